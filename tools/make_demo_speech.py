"""Synthesise the speech clip `autalk demo` animates: keras_autalk/assets/demo_speech.flac.

About 8.5 seconds of English, spoken by espeak-ng (through
`keras_autalk.corpora.demo.speech`) with a voice without breath noise, so the clip
is the same in every run and on every machine; 16 kHz mono 16-bit FLAC
(about 140 KiB) with 0.3 s of silence before and after. The voice (en-us
with the m3 variant) is none of the demo corpus's eight speakers.

Run (writes the file atomically; `--check` only compares):
    python tools/make_demo_speech.py
    python tools/make_demo_speech.py --check
"""

import argparse
import hashlib
import io
import pathlib
import sys

import numpy as np
import soundfile

from keras_autalk.config import AudioConfig
from keras_autalk.corpora.demo import speech
from keras_autalk.files import atomic_output

TEXT = (
    "Hello. This video was made from one photograph and this recording. "
    "A neural network hears my voice and moves the mouth to match it."
)
VOICE = speech.Voice("en-us", "m3", rate=165, pitch=48, pitch_range=55)
PADDING_S = 0.3
OUTPUT = (
    pathlib.Path(__file__).resolve().parent.parent / "keras_autalk" / "assets" / "demo_speech.flac"
)


def demo_speech_bytes(config=AudioConfig()):
    """The FLAC file's bytes and its duration in seconds."""
    spoken = speech.synthesize(TEXT, VOICE, config).padded(PADDING_S, PADDING_S)
    samples = np.clip(np.rint(spoken.waveform * 32767.0), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, spoken.sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue(), spoken.duration


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(OUTPUT), help=f"default {OUTPUT}")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only say whether the file on disk is what this script makes",
    )
    args = parser.parse_args(argv)
    data, duration = demo_speech_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    output = pathlib.Path(args.output)
    if args.check:
        same = output.is_file() and output.read_bytes() == data
        state = "up to date" if same else "DIFFERS"
        print(f"{output}: {state} ({duration:.2f} s, sha256 {digest})")
        return 0 if same else 1
    with atomic_output(output, "demo speech") as partial:
        partial.write_bytes(data)
    print(f"wrote {output}: {duration:.2f} s, {len(data) / 1024:.0f} KiB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
