"""File checks and atomic writes shared by every entry point.

Outputs are written under a temporary name beside the target and renamed
into place only when complete, so a failed or stopped run never leaves a
half-written file behind, and no output is ever the same file as an input
(`refuse_overwriting_inputs`).

Every temporary of one output lives in one folder beside it, named after the
output and the process (`.talk.mp4.autalk-4242/`), which the process holds an
advisory lock on while it lives. A later run removes such folders whose lock
is free (their process is gone, however it ended: SIGKILL, power loss) and
never one a live run holds (`remove_stale_scratch`). The command line also
keeps the process's own temporary files (TensorFlow's autograph files among
them) in one locked folder of the system's temporary directory
(`process_temp_dir`).

Running out of space or quota, a read-only filesystem and an I/O error while
writing are told in one sentence that names the user's path
(`os_error_sentence`).
"""

import contextlib
import errno
import fcntl
import os
import pathlib
import re
import shutil
import tempfile
import time

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
        raise InputFileError(f"The {what} '{path}' is a directory; give the path of a file.")
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
        raise InputFileError(f"The {what} '{path}' is a directory; give a file name.")
    if not folder.is_dir():
        raise InputFileError(
            f"Cannot write the {what} '{path}': the folder '{folder}' does not exist."
        )
    if not os.access(folder, os.W_OK):
        if _read_only(folder):
            raise InputFileError(os_error_sentence(OSError(errno.EROFS, "read-only"), path, what))
        raise InputFileError(
            f"Cannot write the {what} '{path}': the folder '{folder}' is not writable."
        )
    return path


def _read_only(folder):
    """Whether `folder` is on a filesystem mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def same_file(first, second):
    """Whether two paths name the same file, however they are spelled.

    Existing files are compared by device and inode (so hard links,
    symbolic links, `./a/../b` and case-insensitive names are caught);
    paths that do not exist yet by their resolved absolute form.
    """
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def refuse_overwriting_inputs(outputs, inputs):
    """Raise unless every output is a different file from every input.

    Args:
        outputs: `(what, path)` pairs the command will write; None paths are
            skipped.
        inputs: `(what, path)` pairs it reads; None paths (and in-memory
            inputs, which are not paths) are skipped.

    Raises:
        InputFileError: naming both, before any work is done.

    Example:
    >>> refuse_overwriting_inputs([("AU CSV", "talk.wav")], [("audio file", "./talk.wav")])
    Traceback (most recent call last):
    ...
    keras_autalk.errors.InputFileError: The AU CSV 'talk.wav' is the audio file './talk.wav'; an input is never overwritten, so give the AU CSV another name.
    """
    paths = (str, os.PathLike)
    for output_what, output in outputs:
        if not isinstance(output, paths):
            continue
        for input_what, source in inputs:
            if isinstance(source, paths) and same_file(output, source):
                raise InputFileError(
                    f"The {output_what} '{output}' is the {input_what} '{source}'; an input "
                    f"is never overwritten, so give the {output_what} another name."
                )


def format_bytes(count):
    """`1536` -> "1.5 KB", `3.2e9` -> "3.2 GB" (powers of 1000, as `df -H`)."""
    count = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000.0
    return f"{count:.1f} TB"


def free_bytes(folder):
    """Bytes free for this user on the filesystem holding `folder` (None if unknown)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


# What each write error means for the user, by errno.
_SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)
_WRITE_ERRORS = _SPACE_ERRORS + (errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM)


def os_error_sentence(error, path, what="output file", needed=None):
    """One sentence for an `OSError` met while writing `path`, or None.

    None means the error is not one of the write errors told in words
    (no space, quota, read-only filesystem, I/O error, permission); the
    caller lets it through.

    Args:
        error: the `OSError`.
        path: the user's path (not a temporary name).
        what: what the file is ("video").
        needed: about how many bytes the output needs, if known.
    """
    code = getattr(error, "errno", None)
    if code not in _WRITE_ERRORS:
        return None
    path = pathlib.Path(path)
    folder = path.parent if str(path.parent) else pathlib.Path(".")
    if code in _SPACE_ERRORS:
        free = free_bytes(folder)
        free_text = "an unknown amount" if free is None else format_bytes(free)
        if needed and (free is None or needed > free):
            need_text = f", about {format_bytes(needed)} needed"
        else:
            need_text = ", not enough for it"
        reason = (
            "the disk quota is used up"
            if code == errno.EDQUOT
            else "there is no space left on its disk"
        )
        return (
            f"Cannot write the {what} '{path}': {reason} ({free_text} free{need_text}); "
            "free some space or write it to another folder."
        )
    if code == errno.EROFS:
        return (
            f"Cannot write the {what} '{path}': the folder '{folder}' is on a read-only "
            "filesystem; write it to another folder."
        )
    if code == errno.EIO:
        return (
            f"Cannot write the {what} '{path}': the disk reported an input/output error "
            "(it may be failing or disconnected); write it to another disk."
        )
    return (
        f"Cannot write the {what} '{path}': permission denied in the folder "
        f"'{folder}'; write it to another folder."
    )


def check_free_space(path, needed, what="output file"):
    """Refuse, before the work, an output that cannot fit on its disk.

    Args:
        path: the user's output path.
        needed: about how many bytes it will take (with its temporaries).
        what: what the file is.

    Raises:
        InputFileError: less than `needed` bytes are free.
    """
    path = pathlib.Path(path)
    folder = path.parent if str(path.parent) else pathlib.Path(".")
    free = free_bytes(folder)
    if free is not None and needed and free < needed:
        raise InputFileError(
            os_error_sentence(OSError(errno.ENOSPC, "no space"), path, what, needed)
        )


# ------------------------------------------------------------------ scratch folders
SCRATCH_PATTERN = re.compile(r"^\..+\.autalk-(\d+)$")
_LOCK_NAME = ".lock"
# A scratch folder still without its lock file after this long was left by a
# process that died while creating it.
_UNLOCKED_GRACE_S = 60.0
# scratch folder -> (lock descriptor, the user's final path)
_HELD = {}


def _hold(folder, final_path):
    """Create `folder` and hold an exclusive lock on its lock file for this process."""
    folder.mkdir()
    descriptor = os.open(folder / _LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD[folder] = (descriptor, final_path)


def _release(folder):
    """Remove a scratch folder this process holds, then drop its lock."""
    descriptor, _ = _HELD.pop(folder, (None, None))
    shutil.rmtree(folder, ignore_errors=True)
    if descriptor is not None:
        os.close(descriptor)


def _is_abandoned(folder):
    """True when no live process holds `folder`'s lock."""
    if folder in _HELD:
        return False
    lock = folder / _LOCK_NAME
    try:
        descriptor = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > _UNLOCKED_GRACE_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live run holds it
    finally:
        os.close(descriptor)
    return True


def remove_stale_scratch(folder, pattern=SCRATCH_PATTERN):
    """Remove the scratch folders in `folder` that no living run holds.

    Returns:
        The paths removed.
    """
    removed = []
    try:
        entries = list(pathlib.Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if pattern.match(entry.name) and entry.is_dir() and _is_abandoned(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def user_path(path):
    """The user's path a temporary stands for (itself when it is not a temporary)."""
    path = pathlib.Path(path)
    for parent in (path, *path.parents):
        if parent in _HELD:
            return _HELD[parent][1]
    return path


@contextlib.contextmanager
def scratch_folder(path, what="output file"):
    """Yield this process's scratch folder for the output `path`, removed on exit.

    The folder `.NAME.autalk-PID` sits beside `path` (so the final rename
    stays on one filesystem), is locked while this process lives, and goes
    with everything in it when the block ends, however it ends. Stale
    scratch folders of dead runs in the same folder are removed first.
    """
    path = pathlib.Path(path)
    folder = path.parent if str(path.parent) else pathlib.Path(".")
    final = user_path(path)
    remove_stale_scratch(folder)
    scratch = folder / f".{path.name}.autalk-{os.getpid()}"
    try:
        _hold(scratch, final)
    except FileExistsError:
        # The same output twice in one process (nested or repeated): one more level.
        scratch = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=scratch))
        _HELD[scratch] = (None, final)
    except OSError as error:
        sentence = os_error_sentence(error, final, what)
        if sentence is None:
            raise
        raise InputFileError(sentence) from None
    try:
        yield scratch
    finally:
        _release(scratch)


@contextlib.contextmanager
def atomic_output(path, what="output file", needed=None):
    """Yield a temporary path for `path`; rename it to `path` on success.

    The temporary sits in this process's scratch folder beside `path`
    (`scratch_folder`) and keeps `path`'s name, so tools choosing a format
    by extension (image writers, ffmpeg) still see it. On any error, or a
    stop (Ctrl-C, SIGTERM), the scratch folder is removed and `path` is
    left as it was. A write error the user can act on (no space, quota,
    read-only filesystem, I/O error) becomes one sentence naming `path`.

    Args:
        path: the user's output file.
        what: what it is, for messages ("video").
        needed: about how many bytes it will take, if known: checked
            against the free space first, and said if space runs out.

    Example:
    ```python
    with atomic_output("crop.png") as tmp:
        PIL.Image.fromarray(crop).save(tmp)
    ```
    """
    path = check_output_path(path, what)
    final = user_path(path)
    nested = final != path  # inside another output's scratch folder: that one reports
    if needed and not nested:
        check_free_space(final, needed, what)
    failure = None
    with scratch_folder(path, what) as scratch:
        tmp_path = scratch / path.name
        try:
            tmp_path.touch()
            yield tmp_path
            # Give the result the permissions a plain open() would have.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
            os.replace(tmp_path, path)
        except OSError as error:
            if nested or os_error_sentence(error, final, what) is None:
                raise
            failure = error
    # Told once the temporaries are gone, so the free space is what the user has.
    if failure is not None:
        raise InputFileError(os_error_sentence(failure, final, what, needed)) from None


@contextlib.contextmanager
def process_temp_dir(prefix="autalk-run-"):
    """Point this process's temporary files into one locked folder; remove it at the end.

    `tempfile` (and so TensorFlow's autograph files) and child processes
    (through TMPDIR) write there instead of the top of the system's
    temporary directory. Folders of this kind left by runs that are gone
    are removed first.
    """
    system_temp = pathlib.Path(tempfile.gettempdir())
    remove_stale_scratch(system_temp, re.compile(rf"^{re.escape(prefix)}(\d+)-.+$"))
    folder = pathlib.Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=system_temp))
    descriptor = os.open(folder / _LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(folder, ignore_errors=True)
        os.close(descriptor)
