"""Real human speech from Debian packages: connected speech for training and evaluation.

Each source is one Debian package, fetched once with `apt-get download` and
cached (`keras_autalk.corpora.packages`); none of it is committed.

Training (`TRAINING_SOURCES`):

- `festvox-ru`: 620 read Russian sentences by one male speaker (about 100
  min, 16 kHz) with festival phone labels (`lab/*.lab`: each line the end
  time of a phone) and transcripts (`etc/txt.done.data`). `festvox_sentences`
  reads them; `festvox_chunks` cuts each sentence at its pauses into pieces of
  a few seconds (the length of a demo-corpus utterance).
- `fillets-ng-data-cs`, `fillets-ng-data-nl`: about 1,900 and 1,700 short
  dialogue lines of the game Fish Fillets NG by several Czech and Dutch
  actors (Ogg Vorbis, no labels).

Evaluation only, never training (`EVALUATION_SOURCES`): the telephone
prompts of `asterisk-core-sounds-fr-wav` (Canadian French, June Wallack),
`asterisk-prompt-it-menardi-wav` (Italian, Carlo Menardi's recordings) and
`asterisk-prompt-es-co` (Colombian Spanish): sentences by professional
speakers at 8 kHz. `phone_prompts` lists the ones long enough to be
sentences.
"""

import dataclasses
import pathlib
import re
from typing import Tuple

from keras_autalk.corpora import packages
from keras_autalk.errors import AutalkError


@dataclasses.dataclass(frozen=True)
class SpeechSource:
    """One Debian package of recordings.

    Args:
        name: the cache folder's name.
        package: the Debian package.
        prefix: the folder inside the package that holds the files.
        suffixes: the file endings kept.
        licence: the licence its `copyright` file states.
        use: "training" or "evaluation".
    """

    name: str
    package: str
    prefix: str
    suffixes: Tuple[str, ...]
    licence: str
    use: str


_FESTVOX = "usr/share/festival/voices/russian/msu_ru_nsh_clunits/"
TRAINING_SOURCES = (
    SpeechSource(
        "festvox-ru",
        "festvox-ru",
        _FESTVOX,
        (".wav", ".lab", "txt.done.data"),
        "BSD-like (Nickolay V. Shmyrev, 2005)",
        "training",
    ),
    SpeechSource(
        "fillets-cs",
        "fillets-ng-data-cs",
        "usr/share/games/fillets-ng/sound/",
        (".ogg",),
        "GPL-2+ (Fish Fillets NG data)",
        "training",
    ),
    SpeechSource(
        "fillets-nl",
        "fillets-ng-data-nl",
        "usr/share/games/fillets-ng/sound/",
        (".ogg",),
        "GPL-2+ (Fish Fillets NG data)",
        "training",
    ),
)
EVALUATION_SOURCES = (
    SpeechSource(
        "asterisk-fr",
        "asterisk-core-sounds-fr-wav",
        "usr/share/asterisk/sounds/fr_CA_f_June/",
        (".wav",),
        "CC-BY-SA-3.0 (Digium, June Wallack)",
        "evaluation",
    ),
    SpeechSource(
        "asterisk-it",
        "asterisk-prompt-it-menardi-wav",
        "usr/share/asterisk/sounds/it_IT_f_Menardi/",
        (".wav",),
        "CC-BY-SA-3.0 (Carlo Menardi)",
        "evaluation",
    ),
    SpeechSource(
        "asterisk-es",
        "asterisk-prompt-es-co",
        "usr/share/asterisk/sounds/es/",
        (".gsm",),
        "GPL-2 (Avatar Ltda., July E. Jiménez)",
        "evaluation",
    ),
)
SOURCES = {source.name: source for source in TRAINING_SOURCES + EVALUATION_SOURCES}


def default_cache_dir():
    """`$AUTALK_CACHE/speech`, else `~/.cache/keras-autalk/speech`."""
    return packages.cache_root() / "speech"


def fetch(name, cache_dir=None, download=None):
    """The cached folder of one source (`SOURCES` key), fetching it on first use.

    The files keep their paths below the source's `prefix`.

    Args:
        name: a key of `SOURCES`.
        cache_dir: the cache's root (default `default_cache_dir()`).
        download: `folder -> .deb path` (default `apt-get download`).

    Raises:
        AutalkError: an unknown source, or the package could not be fetched.
    """
    if name not in SOURCES:
        raise AutalkError(f"Unknown speech source '{name}'; choose one of {', '.join(SOURCES)}.")
    source = SOURCES[name]

    def wanted(path):
        return path.startswith(source.prefix) and path.endswith(source.suffixes)

    def fill(scratch, staging):
        fetcher = download or (lambda folder: packages.apt_get_download(folder, source.package))
        count = 0
        for path, data in packages.deb_files(pathlib.Path(fetcher(scratch)).read_bytes(), wanted):
            target = pathlib.Path(staging, *pathlib.PurePosixPath(path[len(source.prefix) :]).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            count += 1
        return count

    folder = pathlib.Path(cache_dir or default_cache_dir()) / source.name
    return packages.cached_folder(folder, fill, f"the package {source.package}")


@dataclasses.dataclass(frozen=True)
class LabelledSentence:
    """One festvox-ru sentence: its recording, phones and text.

    Attributes:
        name: e.g. "ru_0001".
        audio: the 16 kHz WAV.
        phones: `(phone, start_s, end_s)` in time order (festival's MSU phone
            set; "pau" is a pause).
        text: the transcript.
    """

    name: str
    audio: pathlib.Path
    phones: tuple
    text: str


def read_lab(text):
    """Festival `.lab` text -> `(phone, start_s, end_s)` tuples.

    Each line after the `#` header is `end_time colour phone`; a phone starts
    where the previous one ended (the first at 0).

    Example:
    >>> read_lab("#\\n0.3 125 pau\\n0.4 125 k\\n")
    (('pau', 0.0, 0.3), ('k', 0.3, 0.4))
    """
    phones, start, body = [], 0.0, False
    for line in text.splitlines():
        if line.strip() == "#":
            body = True
            continue
        fields = line.split()
        if not body or len(fields) != 3:
            continue
        end = float(fields[0])
        phones.append((fields[2], start, end))
        start = end
    return tuple(phones)


def festvox_sentences(folder=None):
    """Every labelled festvox-ru sentence, sorted by name.

    Raises:
        AutalkError: the folder holds no labelled recordings.
    """
    folder = pathlib.Path(folder or fetch("festvox-ru"))
    texts = {}
    transcript = folder / "etc" / "txt.done.data"
    if transcript.is_file():
        for match in re.finditer(
            r'\(\s*(\S+)\s+"(.*?)"\s*\)', transcript.read_text(encoding="utf-8")
        ):
            texts[match.group(1)] = match.group(2)
    sentences = []
    for lab in sorted((folder / "lab").glob("*.lab")):
        wav = folder / "wav" / f"{lab.stem}.wav"
        if wav.is_file():
            sentences.append(
                LabelledSentence(lab.stem, wav, read_lab(lab.read_text()), texts.get(lab.stem, ""))
            )
    if not sentences:
        raise AutalkError(f"'{folder}' holds no festvox-ru recordings with labels.")
    return sentences


def festvox_chunks(sentence, shortest_s=2.0):
    """Cut a sentence at its pauses into `(start_s, end_s, phones)` pieces.

    A cut falls in the middle of a pause ("pau" phone): the first pause at
    least `shortest_s` after the previous cut (and `shortest_s` before the
    end) ends a piece, so pieces run from `shortest_s` to the next pause
    (festvox-ru's phrases: mostly 2-4 s). Phone times in a piece are relative to its start;
    leading and trailing pauses are kept whole up to the cut.

    Example:
    ```python
    pieces = festvox_chunks(festvox_sentences()[0])
    ```
    """
    phones = sentence.phones
    if not phones:
        return []
    total = phones[-1][2]
    cuts = [0.0]
    for phone, start, end in phones:
        middle = (start + end) / 2.0
        if phone == "pau" and middle - cuts[-1] >= shortest_s and total - middle >= shortest_s:
            cuts.append(middle)
    cuts.append(total)
    pieces = []
    for begin, finish in zip(cuts[:-1], cuts[1:]):
        inside = tuple(
            (phone, max(start, begin) - begin, min(end, finish) - begin)
            for phone, start, end in phones
            if end > begin and start < finish
        )
        pieces.append((begin, finish, inside))
    return pieces


def fillets_lines(folder):
    """The dialogue recordings of a fillets-ng source, sorted (`<level>/<lang>/*.ogg`)."""
    lines = sorted(pathlib.Path(folder).glob("*/*/*.ogg"))
    if not lines:
        raise AutalkError(f"'{folder}' holds no fillets-ng dialogue recordings.")
    return lines


def phone_prompts(folder):
    """The prompt recordings of an asterisk source, sorted (digits and letters left out)."""
    folder = pathlib.Path(folder)
    prompts = sorted(
        path for path in folder.iterdir() if path.is_file() and path.suffix in (".wav", ".gsm")
    )
    if not prompts:
        raise AutalkError(f"'{folder}' holds no telephone prompts.")
    return prompts
