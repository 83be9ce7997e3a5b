"""The one exception type users see.

Every user-facing entry point turns bad input into an `AutalkError` whose
message is one clear sentence; the CLI prints it and exits non-zero, never
with a traceback.
"""


class AutalkError(Exception):
    """Bad input or an unusable environment, explained in one sentence."""


class InputFileError(AutalkError):
    """A file given by the user is missing, empty, unreadable or unusable."""


class NoFaceError(AutalkError):
    """No usable face was found in an image."""


class MissingDependencyError(AutalkError):
    """A required package, model file or binary is not available."""
