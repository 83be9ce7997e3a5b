"""What every `autalk` sub-command shares: exit statuses and notes to the user."""

import sys

EXIT_OK = 0
EXIT_ERROR = 1


def note(message):
    """Tell the user something worth knowing that is not an error."""
    print(f"autalk: note: {message}", file=sys.stderr)
