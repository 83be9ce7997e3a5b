"""Several clips in one process: `autalk generate` with several `--audio` or a jobs file.

A jobs file holds one clip per line: the photo, the speech and the MP4 to
write, separated by spaces, quoted as in a shell where a path has spaces
(`shlex`); blank lines and lines starting with `#` are skipped; relative
paths are taken from the jobs file's folder, so the file works from
anywhere:

    # photo            speech               output
    people/ada.jpg     speech/hello.wav     out/ada_hello.mp4
    people/ada.jpg     speech/goodbye.wav   out/ada_goodbye.mp4
    "people/Grace H.png" speech/hello.wav   out/grace_hello.mp4

Every line is checked before the first clip is rendered (the fields, the
files, the speech itself, the outputs: none may repeat or overwrite an
input); a bad line is told in one sentence naming the file and the line,
and nothing is written. Clips of one photo share one `Talker`, so its face
is found once.
"""

import dataclasses
import pathlib
import shlex
from typing import List, Optional

from keras_autalk.config import AudioConfig
from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.files import check_input_file, same_file

FIELDS = ("photo", "speech", "output")


@dataclasses.dataclass
class Job:
    """One clip: a photo, its speech, the MP4 to write, and where it was asked for."""

    photo: pathlib.Path
    audio: pathlib.Path
    output: pathlib.Path
    where: Optional[str] = None  # "'jobs.txt' line 3", or None on the command line

    def tell(self, message):
        """`message`, prefixed with where the job came from."""
        return f"{self.where}: {message}" if self.where else message


def read_jobs_file(path):
    """The jobs a jobs file lists, parsed (not yet checked: `check_jobs`).

    Raises:
        InputFileError: the file is missing or unreadable, a line does not
            hold exactly three fields, or the file lists no job.
    """
    path = check_input_file(path, "jobs file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"The jobs file '{path}' is not UTF-8 text.") from None
    folder = path.parent
    jobs = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"'{path}' line {number}"
        try:
            fields = shlex.split(line, comments=True)
        except ValueError as error:  # an unclosed quote
            raise InputFileError(f"{where}: {error}.") from None
        if not fields:
            continue
        if len(fields) != len(FIELDS):
            raise InputFileError(
                f"{where}: expected {len(FIELDS)} fields (photo, speech, output), found "
                f"{len(fields)}; quote a path that has spaces."
            )
        photo, audio, output = (folder / field for field in fields)
        jobs.append(Job(photo, audio, output, where))
    if not jobs:
        raise InputFileError(
            f"The jobs file '{path}' lists no job (one line per clip: photo, speech, output)."
        )
    return jobs


def jobs_from_arguments(photo, audios, outputs):
    """The jobs of `--image PHOTO --audio A [--audio B ...] -o OUT [-o ...]`.

    Each `--audio` gets the `-o` in its place; or, for several clips, a
    single `-o` naming an existing folder takes one `<speech name>.mp4` per
    clip (one clip's `-o` must name the file).

    Raises:
        AutalkError: the counts do not match, or two clips would get one name.
    """
    audios = [pathlib.Path(audio) for audio in audios]
    outputs = [pathlib.Path(output) for output in outputs]
    if len(outputs) == 1 and len(audios) > 1 and outputs[0].is_dir():
        outputs = [outputs[0] / f"{audio.stem}.mp4" for audio in audios]
    elif len(outputs) != len(audios):
        raise AutalkError(
            f"Give one -o per --audio (got {len(audios)} --audio and {len(outputs)} -o), or "
            "one existing folder as -o."
        )
    return [Job(pathlib.Path(photo), audio, output) for audio, output in zip(audios, outputs)]


def check_jobs(jobs, model="demo"):
    """Check every job before any is rendered; one sentence naming the first bad one.

    The photos and speech must be readable files, the speech must decode
    and hold speech (`session.load_speech`), the outputs must be new `.mp4`
    names in existing folders, no two jobs may write one file, and no
    output may be any job's input.

    Raises:
        AutalkError: the first problem, prefixed with its line.
    """
    from keras_autalk.inference.session import check_outputs, load_speech

    inputs = [("model", model)]
    for job in jobs:
        inputs += [("photo", job.photo), ("audio file", job.audio)]
    checked_speech = set()
    for index, job in enumerate(jobs):
        try:
            check_input_file(job.photo, "photo")
            check_outputs(job.output, None, inputs)
            for earlier in jobs[:index]:
                if same_file(earlier.output, job.output) or earlier.output == job.output:
                    raise InputFileError(
                        f"The output '{job.output}' is also written by "
                        f"{earlier.where or 'another clip'}; give each clip its own output."
                    )
            if job.audio not in checked_speech:
                load_speech(job.audio, AudioConfig())
                checked_speech.add(job.audio)
        except AutalkError as error:
            raise type(error)(job.tell(str(error))) from None


def run_jobs(jobs, model="demo", runtime="auto", progress=True, on_done=None, **options):
    """Render every job, a `Talker` per photo; return their `GenerateResult`s.

    Args:
        jobs: `Job`s, checked (`check_jobs`).
        model, runtime: as `Talker`'s.
        progress: a progress bar over the clips (when there are several)
            and over each long clip.
        on_done: called with each job and its result as it completes.
        **options: `Talker` options (face, face_box, composite) and
            `speak` options (articulation, fps).

    Raises:
        AutalkError: a job failed (its line named); the clips before it are
            complete, it and the later ones are not written.
    """
    from tqdm.auto import tqdm

    from keras_autalk.inference.session import Talker

    speak_options = {name: options.pop(name) for name in ("articulation", "fps") if name in options}
    # The clips of one photo one after another (in the order the photos first
    # appear), so each photo is prepared once and one is held at a time.
    first_seen = {}
    for job in jobs:
        first_seen.setdefault(job.photo.resolve(), len(first_seen))
    order = sorted(range(len(jobs)), key=lambda index: first_seen[jobs[index].photo.resolve()])
    results: List = [None] * len(jobs)
    talker, talker_photo = None, None
    # Cleared when done (leave=False): on an error the sentence stands alone.
    with tqdm(
        total=len(jobs),
        unit="clip",
        desc="Clips",
        leave=False,
        disable=not (progress and len(jobs) > 1),
    ) as bar:
        for index in order:
            job = jobs[index]
            try:
                if talker_photo != job.photo.resolve():
                    talker = None  # the previous photo's memory goes first
                    talker = Talker(job.photo, model=model, runtime=runtime, **options)
                    talker_photo = job.photo.resolve()
                results[index] = talker.speak(
                    job.audio, job.output, progress=progress, **speak_options
                )
            except AutalkError as error:
                raise type(error)(job.tell(str(error))) from None
            if on_done is not None:
                on_done(job, results[index])
            bar.update(1)
    return results


__all__ = ["Job", "check_jobs", "jobs_from_arguments", "read_jobs_file", "run_jobs"]
