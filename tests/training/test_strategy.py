"""keras_autalk.training.strategy: strategies, precision and XLA, the resumable dataset."""

import pytest

from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow
from keras_autalk.training.strategy import (
    distributed_dataset,
    is_chief,
    make_strategy,
    precision_and_xla,
)

tf = import_tensorflow()
import keras  # noqa: E402

# --- strategies ---------------------------------------------------------


def test_default_strategy_has_one_replica():
    strategy = make_strategy("default")
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy)


def test_unknown_strategy_is_one_sentence():
    with pytest.raises(AutalkError, match="Unknown strategy 'tpu'; choose one of default"):
        make_strategy("tpu")


def test_precision_and_xla_resolve_auto_to_off_on_cpu():
    assert precision_and_xla("auto", "auto") == (False, False)
    assert precision_and_xla("off", "on") == (False, True)
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(AutalkError, match="must be auto, on or off"):
        precision_and_xla("maybe", "auto")


# --- datasets -------------------------------------------------------------


def indexed_batches(_context=None):
    """Batch i holds the number i: shows which batches a run consumed."""
    return tf.data.Dataset.range(6).map(lambda i: tf.fill([2], i))


def test_distributed_dataset_repeats_and_skips_consumed_batches():
    strategy = make_strategy("default")
    dataset = distributed_dataset(strategy, indexed_batches, skip_batches=4)
    seen = [int(batch[0]) for batch in dataset.take(5)]
    assert seen == [4, 5, 0, 1, 2]
