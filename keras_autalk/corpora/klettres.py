"""Real human speech for the real-speech benchmark: Debian's `klettres-data` recordings.

The package holds about 1,800 short recordings (letters, syllables, short
words) by native speakers of about 20 languages, as
`usr/share/klettres/<lang>/{alpha,syllab}/*.ogg`. It is fetched once with
`apt-get download klettres-data` (the only network the package uses is the
Debian registry, and only when this module is asked to fetch), unpacked in
Python (a `.deb` is an `ar` archive holding `data.tar.xz`) and cached; none of
it is committed. English (`en`, `en_GB`) is kept for evaluation only: no
training code may read it (`TRAINING_EXCLUDED`).
"""

import pathlib

from keras_autalk.corpora import packages
from keras_autalk.errors import AutalkError

PACKAGE = "klettres-data"
# Evaluation-only languages: never used for training.
TRAINING_EXCLUDED = ("en", "en_GB")
_PREFIX = "usr/share/klettres/"


def default_cache_dir():
    """`$AUTALK_CACHE/klettres`, else `~/.cache/keras-autalk/klettres`."""
    return packages.cache_root() / "klettres"


def unpack_recordings(deb_bytes, target):
    """Extract `usr/share/klettres/**.ogg` of the package into `target/<lang>/<kind>/`.

    Returns:
        The number of recordings written.
    """
    count = 0
    for name, data in packages.deb_files(
        deb_bytes, lambda name: name.startswith(_PREFIX) and name.endswith(".ogg")
    ):
        path = pathlib.Path(target, *pathlib.PurePosixPath(name[len(_PREFIX) :]).parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        count += 1
    return count


def fetch_klettres(cache_dir=None, download=None):
    """The cached recordings folder, fetching and unpacking the package on first use.

    Args:
        cache_dir: where the recordings are kept (default `default_cache_dir()`).
        download: a function `folder -> path of the .deb` (default:
            `apt-get download klettres-data`).

    Returns:
        The folder holding `<lang>/<alpha|syllab>/*.ogg`.

    Raises:
        AutalkError: the package could not be downloaded or read.
    """

    def fill(scratch, staging):
        deb = (download or (lambda folder: packages.apt_get_download(folder, PACKAGE)))(scratch)
        return unpack_recordings(pathlib.Path(deb).read_bytes(), staging)

    return packages.cached_folder(
        cache_dir or default_cache_dir(), fill, "the klettres-data package"
    )


def list_recordings(folder, language, kinds=("alpha", "syllab")):
    """The sorted `.ogg` recordings of one language (`kinds`: alpha letters, syllables).

    Raises:
        AutalkError: no recordings of that language in `folder`.
    """
    paths = sorted(
        p for kind in kinds for p in (pathlib.Path(folder) / language / kind).glob("*.ogg")
    )
    if not paths:
        available = sorted(p.name for p in pathlib.Path(folder).iterdir() if p.is_dir())
        raise AutalkError(
            f"No klettres recordings for '{language}'; the languages are {', '.join(available)}."
        )
    return paths
