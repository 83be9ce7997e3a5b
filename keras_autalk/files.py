"""File checks and atomic writes shared by every entry point.

Outputs are written under a temporary name beside the target and renamed
into place only when complete, so a failed run never leaves a half-written
file behind.
"""

import contextlib
import os
import pathlib
import tempfile

from keras_autalk.errors import InputFileError


def check_input_file(path, what="file"):
    """Return `path` as a `Path` if it is a readable, non-empty file.

    Args:
        path: the file the user named.
        what: what the file is, for the message ("image", "audio file").

    Raises:
        InputFileError: missing, a directory, unreadable or empty.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise InputFileError(f"The {what} '{path}' does not exist.")
    if path.is_dir():
        raise InputFileError(
            f"The {what} '{path}' is a directory; give the path of a file."
        )
    if not os.access(path, os.R_OK):
        raise InputFileError(f"The {what} '{path}' cannot be read (permission denied).")
    if path.stat().st_size == 0:
        raise InputFileError(f"The {what} '{path}' is empty (0 bytes).")
    return path


def check_output_path(path, what="output file"):
    """Return `path` as a `Path` if it can be written: its folder must exist.

    Raises:
        InputFileError: the folder is missing, or the path is a directory.
    """
    path = pathlib.Path(path)
    folder = path.parent if str(path.parent) else pathlib.Path(".")
    if path.is_dir():
        raise InputFileError(
            f"The {what} '{path}' is a directory; give a file name."
        )
    if not folder.is_dir():
        raise InputFileError(
            f"Cannot write the {what} '{path}': the folder '{folder}' does not exist."
        )
    if not os.access(folder, os.W_OK):
        raise InputFileError(
            f"Cannot write the {what} '{path}': the folder '{folder}' is not writable."
        )
    return path


@contextlib.contextmanager
def atomic_output(path, what="output file"):
    """Yield a temporary path beside `path`; rename it to `path` on success.

    The temporary file keeps `path`'s suffix so that tools choosing a format
    by extension (image writers, ffmpeg) still see it. On any error the
    temporary file is removed and `path` is left as it was.

    Example:
    ```python
    with atomic_output("crop.png") as tmp:
        PIL.Image.fromarray(crop).save(tmp)
    ```
    """
    path = check_output_path(path, what)
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent or "."
    )
    os.close(handle)
    tmp_path = pathlib.Path(tmp_name)
    try:
        yield tmp_path
        # mkstemp creates files readable by their owner only; give the
        # result the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
