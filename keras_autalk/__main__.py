"""`python -m keras_autalk` is the `autalk` command."""

import sys

from keras_autalk.cli import main

sys.exit(main())
