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

import io
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

from keras_autalk.errors import AutalkError

PACKAGE = "klettres-data"
# Evaluation-only languages: never used for training.
TRAINING_EXCLUDED = ("en", "en_GB")
_PREFIX = "usr/share/klettres/"
_READY = ".complete"


def default_cache_dir():
    """`$AUTALK_CACHE/klettres`, else `~/.cache/keras-autalk/klettres`."""
    root = os.environ.get("AUTALK_CACHE") or pathlib.Path.home() / ".cache" / "keras-autalk"
    return pathlib.Path(root) / "klettres"


def deb_members(deb_bytes):
    """The members of a `.deb` (`ar` archive) as `{name: bytes}`.

    Raises:
        AutalkError: the bytes are not an `ar` archive.

    Example:
    >>> sorted(deb_members(b"!<arch>\\n" + b"a.txt/".ljust(16) + b"0".ljust(32)
    ...                    + b"2".ljust(10) + b"`\\n" + b"hi"))
    ['a.txt']
    """
    if not deb_bytes.startswith(b"!<arch>\n"):
        raise AutalkError("The downloaded klettres-data file is not a Debian package.")
    members, offset = {}, 8
    while offset + 60 <= len(deb_bytes):
        header = deb_bytes[offset:offset + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        offset += 60
        members[name] = deb_bytes[offset:offset + size]
        offset += size + (size % 2)
    return members


def unpack_recordings(deb_bytes, target):
    """Extract `usr/share/klettres/**.ogg` of the package into `target/<lang>/<kind>/`.

    Returns:
        The number of recordings written.
    """
    members = deb_members(deb_bytes)
    data = next((members[name] for name in members if name.startswith("data.tar")), None)
    if data is None:
        raise AutalkError("The klettres-data package has no data archive.")
    count = 0
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for entry in archive:
            name = entry.name.lstrip("./")
            if not (entry.isfile() and name.startswith(_PREFIX) and name.endswith(".ogg")):
                continue
            relative = pathlib.PurePosixPath(name[len(_PREFIX):])
            if ".." in relative.parts:
                continue
            path = pathlib.Path(target, *relative.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.extractfile(entry).read())
            count += 1
    return count


def fetch_klettres(cache_dir=None, download=None):
    """The cached recordings folder, fetching and unpacking the package on first use.

    Args:
        cache_dir: where the recordings are kept (default `default_cache_dir()`).
        download: a function `folder -> path of the .deb` (default:
            `apt_get_download(folder)`).

    Returns:
        The folder holding `<lang>/<alpha|syllab>/*.ogg`.

    Raises:
        AutalkError: the package could not be downloaded or read.
    """
    cache_dir = pathlib.Path(cache_dir or default_cache_dir())
    if (cache_dir / _READY).is_file():
        return cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=".klettres-", dir=cache_dir.parent))
    try:
        deb = (download or apt_get_download)(scratch)
        staging = scratch / "recordings"
        count = unpack_recordings(pathlib.Path(deb).read_bytes(), staging)
        if count == 0:
            raise AutalkError("The klettres-data package holds no recordings.")
        (staging / _READY).write_text(f"{count}\n")
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
        staging.rename(cache_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cache_dir


def apt_get_download(folder, package=PACKAGE):
    """`apt-get download PACKAGE` into `folder`; the `.deb`'s path.

    A machine whose package lists were never fetched (a fresh container)
    cannot locate the package; then the lists are fetched with
    `apt-get update` into a private folder beside the download (no system
    state changes) and the download is tried again with them.
    """
    first = _run_apt(["download", package], folder)
    if first.returncode != 0 or not _debs(folder, package):
        lists = pathlib.Path(folder) / "apt-lists"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        private = ["-o", f"Dir::State::Lists={lists}"]
        _run_apt(private + ["update"], folder)
        second = _run_apt(private + ["download", package], folder)
        if second.returncode != 0 or not _debs(folder, package):
            last = (second.stderr.strip().splitlines()
                    or first.stderr.strip().splitlines() or ["no output"])[-1]
            raise AutalkError(f"`apt-get download {package}` failed: {last}")
    return _debs(folder, package)[0]


def _debs(folder, package):
    return sorted(pathlib.Path(folder).glob(f"{package}_*.deb"))


def _run_apt(arguments, folder):
    try:
        return subprocess.run(["apt-get", *arguments], cwd=folder, capture_output=True,
                              text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AutalkError(f"Could not run `apt-get {' '.join(arguments)}` ({error}).") from None


def list_recordings(folder, language, kinds=("alpha", "syllab")):
    """The sorted `.ogg` recordings of one language (`kinds`: alpha letters, syllables).

    Raises:
        AutalkError: no recordings of that language in `folder`.
    """
    paths = sorted(p for kind in kinds for p in (pathlib.Path(folder) / language / kind)
                   .glob("*.ogg"))
    if not paths:
        available = sorted(p.name for p in pathlib.Path(folder).iterdir() if p.is_dir())
        raise AutalkError(f"No klettres recordings for '{language}'; the languages are "
                          f"{', '.join(available)}.")
    return paths
