"""Find the utterances of a talking-face corpus on disk.

A reader walks a corpus folder and pairs each video with the files that
belong to it (word alignments, a separate audio recording, an OpenFace CSV
of action-unit labels) by speaker and utterance id. Readers only look at
file names; decoding and checking the files is the job of
`keras_autalk.datasets.prepare`, which reports a bad file instead of failing.

Layouts read:

- **GRID** (`read_grid`), as its downloads unpack:
  videos `root/s1/*.mpg` (or `root/s1/video/mpg_6000/*.mpg`; `.mp4` too),
  word alignments `root/s1/align/*.align`, `root/alignments/s1/*.align` or
  `root/align/s1/*.align`, separate audio `root/audio_25k/s1/*.wav` or
  `root/s1/audio/*.wav`, and OpenFace CSVs `root/s1/au/<id>.csv`. The demo
  corpus is written in this layout.
- **TCD-TIMIT** (`read_tcd_timit`): `root/volunteers/01M/straightcam/*.mp4`
  and `root/lipspeakers/Lipspkr1/straightcam/*.mp4` (other camera angles
  are ignored); the speaker is `volunteers/01M`.
- **A folder of talking videos** (`read_folder`): every video below the
  root; the speaker is the video's folder relative to the root.

For TCD-TIMIT and folders, a `.wav`/`.flac` with the video's name beside it
is its separate audio, and `<name>.csv` beside it or in an `au/` folder
beside it is its OpenFace CSV.

Hidden files (names starting with "."), such as the partial files of an
interrupted write, are never read. Results are sorted by speaker and
utterance id in natural order (`s2` before `s10`), so a corpus always reads
back in the same order.
"""

import dataclasses
import pathlib
import re
from typing import Dict, Iterable, List, Optional

from keras_autalk.errors import AutalkError

CORPUS_KINDS = ("grid", "tcd-timit", "folder", "demo")

# Containers read as videos (matched case-insensitively).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".mpg", ".mpeg", ".webm", ".m4v")
# Separate audio recordings paired with a video of the same name.
AUDIO_EXTENSIONS = (".wav", ".flac")
GRID_VIDEO_EXTENSIONS = (".mpg", ".mpeg", ".mp4")

# Folders of the GRID root that hold alignments or audio, never a speaker.
_GRID_SHARED_FOLDERS = ("align", "alignments", "audio_25k", "audio")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One video of a corpus and the files that belong to it.

    Attributes:
        corpus: "grid", "tcd-timit", "folder" or "demo".
        speaker: speaker id, e.g. "s1" (GRID) or "volunteers/01M" (TCD-TIMIT).
        utterance_id: the video's name without extension, e.g. "bbaf2n".
        video_path: the video file (with its audio track, if any).
        audio_path: a separate audio recording of the utterance, or None.
        align_path: a GRID `.align` word-timing file, or None.
        au_csv_path: an OpenFace 2.x CSV with action-unit labels, or None.

    Example:
    ```python
    utterance = read_corpus("grid", "GRID")[0]
    utterance.key  # "s1/bbaf2n"
    ```
    """

    corpus: str
    speaker: str
    utterance_id: str
    video_path: pathlib.Path
    audio_path: Optional[pathlib.Path] = None
    align_path: Optional[pathlib.Path] = None
    au_csv_path: Optional[pathlib.Path] = None

    @property
    def key(self) -> str:
        """`speaker/utterance_id`: unique within a corpus."""
        return f"{self.speaker}/{self.utterance_id}"


def natural_key(text):
    """Sort key that orders the numbers inside `text` by value ("s2" < "s10")."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", text)
        if part
    ) + ((-1, 0, text),)


def _sorted_utterances(utterances):
    return sorted(utterances, key=lambda u: (natural_key(u.speaker), natural_key(u.utterance_id)))


def _check_root(root, what):
    """`root` as a Path if it is an existing folder, else raise `AutalkError`."""
    root = pathlib.Path(root)
    if not root.exists():
        raise AutalkError(f"The {what} folder '{root}' does not exist.")
    if not root.is_dir():
        raise AutalkError(f"The {what} folder '{root}' is a file, not a folder.")
    return root


def _visible(path):
    return not path.name.startswith(".")


def _files(folder, extensions):
    """Visible files directly in `folder` whose suffix is in `extensions`."""
    if not folder.is_dir():
        return []
    return sorted(
        (
            path
            for path in folder.iterdir()
            if path.is_file() and _visible(path) and path.suffix.lower() in extensions
        ),
        key=lambda path: natural_key(path.name),
    )


def _by_stem(paths):
    """{stem: path}, the first of several files with one stem winning."""
    found: Dict[str, pathlib.Path] = {}
    for path in paths:
        found.setdefault(path.stem, path)
    return found


def _first_match(stem, lookups):
    """The first path named `stem` in a sequence of {stem: path} lookups."""
    for lookup in lookups:
        if stem in lookup:
            return lookup[stem]
    return None


def _no_videos(root, what, expected):
    return AutalkError(f"No {what} were found in '{root}' (expected {expected}).")


def _grid_speaker_videos(speaker_folder):
    """{utterance id: video path} of one GRID speaker, first layout winning."""
    videos: Dict[str, pathlib.Path] = {}
    for folder in (speaker_folder, speaker_folder / "video" / "mpg_6000", speaker_folder / "video"):
        for stem, path in _by_stem(_files(folder, GRID_VIDEO_EXTENSIONS)).items():
            videos.setdefault(stem, path)
    return videos


def read_grid(root, corpus="grid"):
    """List the utterances of a GRID corpus (or the demo corpus).

    Every folder of `root` holding videos is a speaker (`s1`, `s2`, ...);
    each video is paired by name with its `.align` file, separate `.wav`
    and OpenFace CSV where present (see the module docstring for the
    layouts). Alignments or audio without a video are ignored.

    Args:
        root: the GRID folder.
        corpus: the corpus name stored in each `Utterance` ("grid", or
            "demo" for the demo corpus, which uses GRID's layout).

    Returns:
        A list of `Utterance`, sorted by speaker and utterance id.

    Raises:
        AutalkError: `root` is missing, not a folder, or holds no videos.

    Example:
    ```python
    utterances = read_grid("GRID")
    utterances[0].video_path, utterances[0].align_path
    ```
    """
    root = _check_root(root, "GRID corpus")
    utterances = []
    for speaker_folder in sorted(root.iterdir(), key=lambda path: natural_key(path.name)):
        if (
            not speaker_folder.is_dir()
            or not _visible(speaker_folder)
            or speaker_folder.name in _GRID_SHARED_FOLDERS
        ):
            continue
        speaker = speaker_folder.name
        videos = _grid_speaker_videos(speaker_folder)
        if not videos:
            continue
        aligns = [
            _by_stem(_files(folder, (".align",)))
            for folder in (
                speaker_folder / "align",
                root / "alignments" / speaker,
                root / "align" / speaker,
            )
        ]
        audios = [
            _by_stem(_files(folder, AUDIO_EXTENSIONS))
            for folder in (root / "audio_25k" / speaker, speaker_folder / "audio")
        ]
        au_csvs = [_by_stem(_files(speaker_folder / "au", (".csv",)))]
        for stem, video_path in videos.items():
            utterances.append(
                Utterance(
                    corpus=corpus,
                    speaker=speaker,
                    utterance_id=stem,
                    video_path=video_path,
                    audio_path=_first_match(stem, audios),
                    align_path=_first_match(stem, aligns),
                    au_csv_path=_first_match(stem, au_csvs),
                )
            )
    if not utterances:
        raise _no_videos(root, "GRID videos", "speaker folders such as 's1/' with .mpg videos")
    return _sorted_utterances(utterances)


def _paired_utterances(corpus, speaker, video_paths: Iterable[pathlib.Path]):
    """Utterances of videos in one folder, with audio and CSVs beside them."""
    video_paths = list(video_paths)
    stems = [path.stem for path in video_paths]
    utterances = []
    for video_path in video_paths:
        folder = video_path.parent
        stem = video_path.stem
        # Two containers of one name ("talk.mp4", "talk.mov") stay apart.
        utterance_id = stem if stems.count(stem) == 1 else video_path.name
        audio_path = _first_match(stem, [_by_stem(_files(folder, AUDIO_EXTENSIONS))])
        au_csv_path = _first_match(
            stem, [_by_stem(_files(folder, (".csv",))), _by_stem(_files(folder / "au", (".csv",)))]
        )
        utterances.append(
            Utterance(
                corpus=corpus,
                speaker=speaker,
                utterance_id=utterance_id,
                video_path=video_path,
                audio_path=audio_path,
                au_csv_path=au_csv_path,
            )
        )
    return utterances


def read_tcd_timit(root):
    """List the utterances of TCD-TIMIT (frontal camera only).

    Reads `root/volunteers/<NN>/straightcam/*.mp4` and
    `root/lipspeakers/<LipspkrN>/straightcam/*.mp4`; the speaker id is the
    group and folder (`volunteers/01M`), the utterance id the file name
    (`sa1`). Other camera angles (`30degcam`) are ignored.

    Args:
        root: the TCD-TIMIT folder (holding `volunteers/`, `lipspeakers/`).

    Returns:
        A list of `Utterance`, sorted by speaker and utterance id.

    Raises:
        AutalkError: `root` is missing, not a folder, or holds no videos.

    Example:
    ```python
    utterances = read_tcd_timit("TCD-TIMIT")
    utterances[0].speaker  # "lipspeakers/Lipspkr1"
    ```
    """
    root = _check_root(root, "TCD-TIMIT corpus")
    utterances = []
    for group in ("lipspeakers", "volunteers"):
        group_folder = root / group
        if not group_folder.is_dir():
            continue
        for speaker_folder in group_folder.iterdir():
            if not speaker_folder.is_dir() or not _visible(speaker_folder):
                continue
            videos = _files(speaker_folder / "straightcam", VIDEO_EXTENSIONS)
            utterances += _paired_utterances("tcd-timit", f"{group}/{speaker_folder.name}", videos)
    if not utterances:
        raise _no_videos(
            root,
            "TCD-TIMIT videos",
            "'volunteers/<NN>/straightcam/*.mp4' or 'lipspeakers/<name>/straightcam/*.mp4'",
        )
    return _sorted_utterances(utterances)


def read_folder(root):
    """List every video below a folder as an utterance.

    Videos are found recursively (any of `VIDEO_EXTENSIONS`, in any case);
    hidden files and folders are skipped. The speaker is the video's folder
    relative to `root` (`alice` for `root/alice/talk.mp4`; the root's own
    name for videos directly in it), the utterance id the file name.

    Args:
        root: a folder of talking-face videos with audio.

    Returns:
        A list of `Utterance`, sorted by speaker and utterance id.

    Raises:
        AutalkError: `root` is missing, not a folder, or holds no videos.

    Example:
    ```python
    utterances = read_folder("my_videos")
    ```
    """
    root = _check_root(root, "video")
    by_folder: Dict[pathlib.Path, List[pathlib.Path]] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            by_folder.setdefault(path.parent, []).append(path)
    utterances = []
    for folder, videos in by_folder.items():
        relative = folder.relative_to(root).as_posix()
        speaker = root.resolve().name if relative == "." else relative
        videos = sorted(videos, key=lambda path: natural_key(path.name))
        utterances += _paired_utterances("folder", speaker, videos)
    if not utterances:
        raise _no_videos(root, "videos", "files ending in " + ", ".join(VIDEO_EXTENSIONS))
    return _sorted_utterances(utterances)


def read_corpus(kind, root):
    """List the utterances of a corpus of the given kind.

    Args:
        kind: "grid", "demo" (the demo corpus, in GRID's layout),
            "tcd-timit" or "folder".
        root: the corpus folder.

    Returns:
        A list of `Utterance`, sorted by speaker and utterance id; the same
        files always give the same list.

    Raises:
        AutalkError: an unknown `kind`, or a missing or empty corpus folder.

    Example:
    ```python
    for utterance in read_corpus("tcd-timit", "TCD-TIMIT"):
        print(utterance.key, utterance.video_path)
    ```
    """
    if kind in ("grid", "demo"):
        return read_grid(root, corpus=kind)
    if kind == "tcd-timit":
        return read_tcd_timit(root)
    if kind == "folder":
        return read_folder(root)
    raise AutalkError(f"Unknown corpus kind {kind!r}; choose one of {', '.join(CORPUS_KINDS)}.")
