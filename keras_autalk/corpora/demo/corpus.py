"""The demo corpus: a GRID-like audio-visual corpus rendered offline.

GRID cannot be downloaded here, so this module renders a corpus with the
same grammar and on-disk layout, deterministically from a seed:

- sentences of GRID's grammar (`grid`), spoken by espeak-ng voices with
  rate and pitch jitter (`speech`), with phoneme timings;
- phonemes -> visemes -> mouth-shape parameters with co-articulation ->
  ground-truth AU intensity curves (`visemes`);
- frames: real face photos shipped by installed packages, augmented and
  morphed into several identities, their lower face warped and the mouth
  interior drawn (`render`), with small head motion and blinks; 25 fps.

Layout written under `root` (what `corpora.read_grid` reads, like GRID):

```
root/demo_corpus.json          seed, size, speakers (voice, identity), split
root/sN/<id>.mpg               MPEG-1 video 360x288 at 25 fps with MP2 audio
root/sN/audio/<id>.wav         the same speech, 16 kHz mono PCM
root/sN/align/<id>.align       GRID word timings (1/25000 s units)
root/sN/au/<id>.csv            ground-truth AUs in OpenFace 2.x CSV format
root/sN/mouth/<id>.npy         ground-truth mouth parameters (frames, 8)
```

The held-out split, fixed by the seed: every utterance of the last speaker
(a voice no training speaker uses) and, for every other speaker, a few
utterances of held-out sentences that no training utterance contains.
"""

import dataclasses
import functools
import json
import multiprocessing
import os
import pathlib
import tempfile
from typing import Tuple

import numpy as np

from keras_autalk.config import MOUTH_PARAMETERS, AudioConfig
from keras_autalk.errors import AutalkError
from keras_autalk.files import atomic_output

MANIFEST_NAME = "demo_corpus.json"
MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class DemoCorpusConfig:
    """What the demo corpus holds.

    Args:
        seed: everything (sentences, voices' jitter, identities, motion) is
            drawn from this seed.
        num_speakers: speakers `s1..sN`; each has its own voice; the last
            speaker's voice is held out (test only).
        utterances_per_speaker: sentences each speaker says.
        test_utterances_per_speaker: of those, how many each training speaker
            says from the held-out sentences (they go to the test split).
        num_identities: distinct faces (photos, augmentations, morphs);
            speaker `k` has identity `k % num_identities`.
        frame_size: `(height, width)` of the video, GRID's 288x360.
        silence_s: range of the silence before and after each sentence.
        rate_jitter: per-utterance speaking-rate variation (fraction).
        pitch_jitter: per-utterance pitch variation (espeak pitch steps).
        faces: "bundled" (the two bundled photos, augmented and morphed:
            `num_identities` identities, one per speaker) or "photos" (every
            person of `people.find_people`: each training utterance on a
            training person's photo, augmented; each test utterance on a
            held-out person's photo, as it is).
        festvox_ru: pieces of festvox-ru's labelled Russian sentences to add
            (speaker `ru`; the mouth follows the labelled phones).
        fillets: dialogue lines of each of fillets-ng's Czech and Dutch
            recordings to add (speakers `cs`, `nl`; the mouth follows the
            speech energy, `visemes.energy_mouth_track`).
    """

    seed: int = 0
    num_speakers: int = 8
    utterances_per_speaker: int = 80
    test_utterances_per_speaker: int = 8
    num_identities: int = 8
    frame_size: Tuple[int, int] = (288, 360)
    silence_s: Tuple[float, float] = (0.25, 0.5)
    rate_jitter: float = 0.06
    pitch_jitter: int = 4
    faces: str = "bundled"
    festvox_ru: int = 0
    fillets: int = 0

    def __post_init__(self):
        if self.faces not in ("bundled", "photos"):
            raise ValueError(f"faces must be 'bundled' or 'photos', got {self.faces!r}.")
        if self.num_speakers < 2:
            raise ValueError("The demo corpus needs at least 2 speakers (one is held out).")
        if not 0 <= self.test_utterances_per_speaker < self.utterances_per_speaker:
            raise ValueError("test_utterances_per_speaker must be below utterances_per_speaker.")


# `--size` presets of `autalk prepare --corpus demo`. The default renders
# and prepares in about 10 minutes on a 2-core CPU (see docs/data.md).
SIZES = {
    "tiny": DemoCorpusConfig(
        num_speakers=3, utterances_per_speaker=3, test_utterances_per_speaker=1, num_identities=3
    ),
    "small": DemoCorpusConfig(
        num_speakers=4, utterances_per_speaker=12, test_utterances_per_speaker=2, num_identities=4
    ),
    "default": DemoCorpusConfig(),
    # Many real identities and real connected speech (issue 17): renders
    # and prepares in about 25 minutes on a 2-core CPU.
    "people": DemoCorpusConfig(
        utterances_per_speaker=60,
        test_utterances_per_speaker=6,
        faces="photos",
        festvox_ru=300,
        fillets=60,
    ),
    "people-tiny": DemoCorpusConfig(
        num_speakers=3,
        utterances_per_speaker=3,
        test_utterances_per_speaker=1,
        faces="photos",
        festvox_ru=3,
        fillets=2,
    ),
}


def size_config(size, seed=0):
    """The `DemoCorpusConfig` of a named size ("tiny", "small", "default")."""
    if size not in SIZES:
        raise AutalkError(f"Unknown demo corpus size '{size}'; choose one of {', '.join(SIZES)}.")
    return dataclasses.replace(SIZES[size], seed=seed)


def plan(corpus_config):
    """Decide every utterance: speaker, voice, identity, sentence, split.

    Returns:
        A JSON-ready dict: `speakers` (name -> voice, identity index,
        held_out), `utterances` (list of dicts with speaker, id, text,
        split) and `held_out_sentences` (GRID ids).
    """
    from keras_autalk.corpora import grid
    from keras_autalk.corpora.demo import speech

    rng = np.random.default_rng([corpus_config.seed, 0])
    num_voices = len(speech.VOICES)
    if corpus_config.num_speakers > num_voices:
        raise AutalkError(
            f"The demo corpus has {num_voices} voices, so at most {num_voices} speakers."
        )
    voice_order = rng.permutation(num_voices)
    speakers = {}
    for index in range(corpus_config.num_speakers):
        voice = speech.VOICES[int(voice_order[index])]
        speakers[f"s{index + 1}"] = {
            "voice": voice.espeak_name,
            "voice_index": int(voice_order[index]),
            "identity": index % corpus_config.num_identities,
            "held_out": index == corpus_config.num_speakers - 1,
        }
    per_speaker = corpus_config.utterances_per_speaker
    num_training = corpus_config.num_speakers - 1
    pool_size = max(per_speaker, corpus_config.test_utterances_per_speaker * num_training)
    held_out = grid.sample_sentences(rng, pool_size)
    held_out_ids = [sentence.grid_id for sentence in held_out]
    utterances = []
    for index, (name, speaker) in enumerate(speakers.items()):
        speaker_rng = np.random.default_rng([corpus_config.seed, 1, index])
        if speaker["held_out"]:
            picks = speaker_rng.choice(len(held_out), size=per_speaker, replace=False)
            chosen = [(held_out[int(k)], "test") for k in sorted(picks)]
        else:
            tests = corpus_config.test_utterances_per_speaker
            picks = speaker_rng.choice(len(held_out), size=tests, replace=False)
            chosen = [(held_out[int(k)], "test") for k in sorted(picks)]
            trains = grid.sample_sentences(speaker_rng, per_speaker - tests, exclude=held_out)
            chosen += [(sentence, "train") for sentence in trains]
        for sentence, split in sorted(chosen, key=lambda item: item[0].grid_id):
            utterances.append(
                {"speaker": name, "id": sentence.grid_id, "text": sentence.text, "split": split}
            )
    recorded = _recorded_utterances(corpus_config)
    for item in recorded:
        speakers.setdefault(
            item["speaker"], {"voice": item["source"], "held_out": False, "identity": None}
        )
    utterances += recorded
    if corpus_config.faces == "photos":
        _assign_faces(utterances, corpus_config.seed)
    return {"speakers": speakers, "utterances": utterances, "held_out_sentences": held_out_ids}


# festvox-ru sentences numbered above this are the test split's (about 10 %).
FESTVOX_TEST_FROM = 561
# fillets-ng lines longer than this are cut (seconds).
LONGEST_RECORDED_S = 8.0


def _recorded_utterances(corpus_config):
    """The human-speech utterances of the plan: festvox-ru pieces and fillets-ng lines."""
    from keras_autalk.corpora import speech_packages

    rng = np.random.default_rng([corpus_config.seed, 4])
    items = []
    if corpus_config.festvox_ru:
        pieces = [
            (sentence.name, number, start, end)
            for sentence in speech_packages.festvox_sentences()
            for number, (start, end, _) in enumerate(speech_packages.festvox_chunks(sentence), 1)
        ]
        count = min(corpus_config.festvox_ru, len(pieces))
        for index in sorted(rng.choice(len(pieces), size=count, replace=False)):
            name, number, start, end = pieces[int(index)]
            split = "test" if int(name.split("_")[-1]) >= FESTVOX_TEST_FROM else "train"
            items.append(
                {
                    "speaker": "ru",
                    "id": f"{name}_{number}",
                    "source": "festvox-ru",
                    "recording": name,
                    "start": round(start, 4),
                    "end": round(end, 4),
                    "text": "",
                    "split": split,
                }
            )
    for language in ("cs", "nl") if corpus_config.fillets else ():
        folder = speech_packages.fetch(f"fillets-{language}")
        lines = speech_packages.fillets_lines(folder)
        count = min(corpus_config.fillets, len(lines))
        for order, index in enumerate(sorted(rng.choice(len(lines), size=count, replace=False))):
            path = lines[int(index)]
            items.append(
                {
                    "speaker": language,
                    "id": f"{path.parent.parent.name}-{path.stem}",
                    "source": f"fillets-{language}",
                    "recording": path.relative_to(folder).as_posix(),
                    "text": "",
                    "split": "test" if order % 10 == 9 else "train",
                }
            )
    return items


def _assign_faces(utterances, seed):
    """Give every utterance a person's face: training people for "train", held-out ones for "test".

    The person is drawn uniformly (so one with 11 photos is not 11 times as
    frequent), then one of their faces.
    """
    from keras_autalk.corpora.demo import people as people_lib

    people = people_lib.find_people()
    pools = {
        "train": [person for person in people if not person.held_out],
        "test": [person for person in people if person.held_out],
    }
    for number, item in enumerate(utterances):
        rng = np.random.default_rng([seed, 3, number])
        pool = pools[item["split"]]
        person = pool[int(rng.integers(len(pool)))]
        item["person"] = person.name
        item["face"] = person.faces[int(rng.integers(len(person.faces)))].key


def _paths(root, speaker, utterance_id):
    folder = pathlib.Path(root) / speaker
    return {
        "video": folder / f"{utterance_id}.mpg",
        "audio": folder / "audio" / f"{utterance_id}.wav",
        "align": folder / "align" / f"{utterance_id}.align",
        "au": folder / "au" / f"{utterance_id}.csv",
        "mouth": folder / "mouth" / f"{utterance_id}.npy",
    }


def is_rendered(root, speaker, utterance_id):
    """Whether every file of an utterance exists (the video is written last)."""
    return all(path.exists() for path in _paths(root, speaker, utterance_id).values())


_IDENTITIES = {}


def _identities(corpus_config):
    """The identity bank, built once per process."""
    from keras_autalk.corpora.demo import identities

    key = (corpus_config.seed, corpus_config.num_identities, corpus_config.frame_size)
    if key not in _IDENTITIES:
        _IDENTITIES[key] = identities.identity_bank(
            corpus_config.num_identities, corpus_config.seed, frame_size=corpus_config.frame_size
        )
    return _IDENTITIES[key]


@functools.lru_cache(maxsize=None)
def _faces_by_key():
    from keras_autalk.corpora.demo import people

    return {
        face.key: face for person in people.find_people(progress=False) for face in person.faces
    }


def _identity(corpus_config, speaker_info, utterance, rng):
    """The face an utterance is rendered on (see `DemoCorpusConfig.faces`)."""
    from keras_autalk.corpora.demo import identities, people

    if corpus_config.faces == "bundled":
        index = speaker_info["identity"]
        if index is None:
            index = int(rng.integers(corpus_config.num_identities))
        return _identities(corpus_config)[index]
    face = _faces_by_key()[utterance["face"]]
    pixels = people.load_photo(face.source, face.photo)
    return identities.make_identity(
        pixels,
        np.array(face.landmarks),
        rng,
        corpus_config.frame_size,
        augment=utterance["split"] == "train",
        name=utterance["person"],
    )


def write_mpg(path, frames, waveform, sample_rate, fps):
    """Write frames + audio as GRID-style MPEG-1 video with MP2 audio, atomically."""
    import soundfile

    from keras_autalk.media import ffmpeg

    height, width = frames.shape[1:3]
    with atomic_output(path, "video") as temporary, tempfile.TemporaryDirectory() as scratch:
        wav = pathlib.Path(scratch) / "audio.wav"
        soundfile.write(wav, waveform, sample_rate, subtype="PCM_16")
        ffmpeg.run_ffmpeg(
            [
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{width}x{height}",
                "-r",
                str(fps),
                "-i",
                "pipe:0",
                "-i",
                ffmpeg.file_argument(wav),
                "-map",
                "0:v:0",
                "-map",
                "1:a:0",
                "-c:v",
                "mpeg1video",
                "-q:v",
                "2",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "mp2",
                "-b:a",
                "128k",
                "-ar",
                "32000",
                "-f",
                "mpeg",
                ffmpeg.file_argument(temporary),
            ],
            input_bytes=np.ascontiguousarray(frames).tobytes(),
            what=f"'{path}'",
        )


def render_utterance(
    root, corpus_config, speaker, speaker_info, utterance, audio_config=AudioConfig()
):
    """Synthesise, animate and write one utterance (skipped if already there).

    Returns:
        The number of frames rendered (0 if it was already there).
    """
    from keras_autalk.corpora import grid
    from keras_autalk.corpora.demo import render, speech, visemes
    from keras_autalk.media import audio

    if is_rendered(root, speaker, utterance["id"]):
        return 0
    speaker_index = int(speaker[1:]) - 1
    utterance_index = int(grid.Sentence.from_grid_id(utterance["id"]).index)
    rng = np.random.default_rng([corpus_config.seed, 2, speaker_index, utterance_index])
    sentence = grid.Sentence.from_grid_id(utterance["id"])
    voice = speech.VOICES[speaker_info["voice_index"]].jittered(
        rng, rate_fraction=corpus_config.rate_jitter, pitch_steps=corpus_config.pitch_jitter
    )
    spoken = speech.synthesize(sentence.spoken_text, voice, audio_config)
    low, high = corpus_config.silence_s
    spoken = spoken.padded(rng.uniform(low, high), rng.uniform(low, high))
    num_frames = audio.num_video_frames(spoken.waveform.size, audio_config)
    # The waveform is cut or padded to exactly the video's length.
    samples = int(round(num_frames * audio_config.sample_rate / audio_config.fps))
    waveform = np.zeros(samples, np.float32)
    waveform[: min(samples, spoken.waveform.size)] = spoken.waveform[:samples]
    mouth = visemes.mouth_track(spoken.phonemes, num_frames, audio_config.fps)
    identity = _identity(corpus_config, speaker_info, utterance, rng)
    frames, _ = render.render_frames(identity, mouth, rng, fps=audio_config.fps)
    _write_utterance(
        root,
        speaker,
        utterance["id"],
        waveform,
        mouth,
        frames,
        grid.word_segments(sentence, spoken.words),
        audio_config,
    )
    return num_frames


def _write_utterance(root, speaker, utterance_id, waveform, mouth, frames, segments, audio_config):
    """Write an utterance's audio, align, AU, mouth and video files (the video last)."""
    import soundfile

    from keras_autalk.corpora import grid
    from keras_autalk.corpora.demo import visemes
    from keras_autalk.media import au_labels

    num_frames = len(frames)
    action_units = visemes.SUPPORTED_ACTION_UNITS
    intensity = visemes.au_intensities(mouth, action_units)
    paths = _paths(root, speaker, utterance_id)
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(paths["audio"], "audio file") as temporary:
        soundfile.write(
            temporary, waveform, audio_config.sample_rate, subtype="PCM_16", format="WAV"
        )
    grid.write_align(paths["align"], segments, duration_s=num_frames / audio_config.fps)
    au_labels.write_openface_csv(paths["au"], intensity, action_units, audio_config.fps)
    with atomic_output(paths["mouth"], "mouth track") as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, mouth.astype(np.float32))
    write_mpg(paths["video"], frames, waveform, audio_config.sample_rate, audio_config.fps)


def _speech_segments(active, fps):
    """`(start_s, end_s, "speech")` for each run of True frames (at least one segment)."""
    segments, start = [], None
    for frame, on in enumerate(list(active) + [False]):
        if on and start is None:
            start = frame
        elif not on and start is not None:
            segments.append((start / fps, frame / fps, "speech"))
            start = None
    return segments or [(0.0, len(active) / fps, "sil")]


@functools.lru_cache(maxsize=None)
def _festvox_sentences():
    """festvox-ru's sentences by name, read once per process."""
    from keras_autalk.corpora import speech_packages

    return {sentence.name: sentence for sentence in speech_packages.festvox_sentences()}


def _recorded_speech(utterance, audio_config):
    """`(waveform, timed espeak phonemes or None)` of a human-speech utterance."""
    from keras_autalk.corpora import speech_packages
    from keras_autalk.corpora.demo import visemes
    from keras_autalk.media import audio

    rate = audio_config.sample_rate
    if utterance["source"] == "festvox-ru":
        sentence = _festvox_sentences()[utterance["recording"]]
        start, end = utterance["start"], utterance["end"]
        waveform = audio.load_audio(sentence.audio, audio_config)
        waveform = waveform[int(round(start * rate)) : int(round(end * rate))]
        piece = next(
            phones
            for begin, _, phones in speech_packages.festvox_chunks(sentence)
            if abs(begin - start) < 1e-3
        )
        return waveform, visemes.from_russian(piece)
    folder = speech_packages.fetch(utterance["source"])
    waveform = audio.load_audio(folder / utterance["recording"], audio_config)
    return waveform[: int(LONGEST_RECORDED_S * rate)], None


def render_recorded(root, corpus_config, speaker, utterance, audio_config=AudioConfig()):
    """Animate and write one human-speech utterance (skipped if already there).

    festvox-ru pieces drive the mouth from their labelled phones (through
    `visemes.from_russian` and the same viseme path as espeak-ng);
    fillets-ng lines from their energy (`visemes.energy_mouth_track`).
    Silence of `corpus_config.silence_s` is added before and after.

    Returns:
        The number of frames rendered (0 if it was already there).
    """
    from keras_autalk.corpora.demo import render, visemes
    from keras_autalk.media import audio

    if is_rendered(root, speaker, utterance["id"]):
        return 0
    key = [ord(char) for char in utterance["id"]]
    rng = np.random.default_rng([corpus_config.seed, 5, *key])
    waveform, phonemes = _recorded_speech(utterance, audio_config)
    rate, fps = audio_config.sample_rate, audio_config.fps
    low, high = corpus_config.silence_s
    before, after = rng.uniform(low, high), rng.uniform(low, high)
    waveform = np.pad(waveform, (int(round(before * rate)), int(round(after * rate))))
    num_frames = audio.num_video_frames(waveform.size, audio_config)
    samples = int(round(num_frames * rate / fps))
    waveform = np.pad(waveform, (0, max(0, samples - waveform.size)))[:samples]
    waveform = waveform.astype(np.float32)
    if phonemes is not None:
        phonemes = [(phone, start + before, end + before) for phone, start, end in phonemes]
        mouth = visemes.mouth_track(phonemes, num_frames, fps, strict=True)
    else:
        mouth = visemes.energy_mouth_track(waveform, rate, num_frames, fps)
    identity = _identity(corpus_config, {"identity": None}, utterance, rng)
    frames, _ = render.render_frames(identity, mouth, rng, fps=fps)
    speaking = mouth[:, MOUTH_PARAMETERS.index("jaw_drop")] > 0.05
    _write_utterance(
        root,
        speaker,
        utterance["id"],
        waveform,
        mouth,
        frames,
        _speech_segments(speaking, fps),
        audio_config,
    )
    return num_frames


def _render_task(arguments):
    root, corpus_config, speaker, speaker_info, utterance = arguments
    from keras_autalk.native import native_stderr_silenced

    with native_stderr_silenced():
        if "source" in utterance:
            return render_recorded(root, corpus_config, speaker, utterance)
        return render_utterance(root, corpus_config, speaker, speaker_info, utterance)


def _worker_init():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def render_corpus(root, corpus_config=DemoCorpusConfig(), num_workers=2, progress=True):
    """Render the demo corpus into `root` (resumable: finished utterances are kept).

    Args:
        root: output folder (created if missing).
        corpus_config: `DemoCorpusConfig` (or one of `SIZES`).
        num_workers: processes; 0 or 1 renders in this process.
        progress: show a progress bar.

    Returns:
        The manifest dict, also written to `root/demo_corpus.json`.

    Example:
    ```python
    render_corpus("demo_corpus", SIZES["tiny"])
    ```
    """
    from tqdm import tqdm

    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST_NAME
    layout = plan(corpus_config)
    manifest = {
        "version": MANIFEST_VERSION,
        "corpus": "demo",
        "config": dataclasses.asdict(corpus_config),
        "fps": AudioConfig().fps,
        "sample_rate": AudioConfig().sample_rate,
        "mouth_parameters": list(MOUTH_PARAMETERS),
        **layout,
    }
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text())
        # Compared as JSON: tuples come back from the file as lists.
        if existing.get("config") != json.loads(json.dumps(manifest["config"])):
            raise AutalkError(
                f"'{root}' already holds a demo corpus made with other settings; "
                "choose an empty folder or the same size and seed."
            )
    with atomic_output(manifest_path, "demo corpus manifest") as temporary:
        temporary.write_text(json.dumps(manifest, indent=1))
    tasks = [
        (str(root), corpus_config, item["speaker"], layout["speakers"][item["speaker"]], item)
        for item in layout["utterances"]
        if not is_rendered(root, item["speaker"], item["id"])
    ]
    bar = tqdm(
        total=len(layout["utterances"]),
        initial=len(layout["utterances"]) - len(tasks),
        desc="render demo corpus",
        unit="utt",
        disable=not progress,
    )
    with bar:
        if num_workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                _render_task(task)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(num_workers, initializer=_worker_init) as pool:
                for _ in pool.imap_unordered(_render_task, tasks, chunksize=1):
                    bar.update(1)
    return manifest


def read_manifest(root):
    """The demo corpus manifest of `root`, or an `AutalkError` if it has none."""
    path = pathlib.Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise AutalkError(f"'{root}' holds no demo corpus ({MANIFEST_NAME} is missing).")
    return json.loads(path.read_text())


def split_function(manifest):
    """`utterance -> "train" | "test"` following the manifest's fixed split."""
    splits = {(item["speaker"], item["id"]): item["split"] for item in manifest["utterances"]}

    def split_of(utterance):
        return splits.get((utterance.speaker, utterance.utterance_id), "train")

    return split_of
