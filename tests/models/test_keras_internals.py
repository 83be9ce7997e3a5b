"""The Keras internals the package relies on are all in one module, and still there."""

import pathlib
import re

import keras

from keras_autalk.models import keras_internals

PACKAGE = pathlib.Path(keras_internals.__file__).resolve().parents[1]
PRIVATE = re.compile(
    r"keras\.src\b|(?<![A-Za-z0-9])_(?:maybe_symbolic_build|trackable_children"
    r"|initial_epoch|distribute_strategy)\b"
)


def test_this_keras_still_has_every_internal_the_package_relies_on():
    # Fails loudly, naming the hook, when a Keras upgrade changes one.
    assert keras_internals.changed_internals() == []


def test_the_constraints_pin_the_keras_these_internals_were_written_for():
    constraints = (PACKAGE.parent / "constraints.txt").read_text().splitlines()
    assert f"keras=={keras_internals.KERAS_TESTED}" in constraints
    assert keras.__version__ == keras_internals.KERAS_TESTED


def test_no_other_module_uses_keras_internals():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "keras_internals.py":
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(PACKAGE)}: {match}" for match in PRIVATE.findall(text)]
    assert offenders == []
