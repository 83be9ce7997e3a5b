"""The private parts of Keras keras-autalk relies on: all of them, here, and why.

Keras 3 has no public API for three things the GAN needs, so this module
holds the only uses of Keras internals in the package; everything else uses
public Keras. `constraints.txt` pins the Keras they were written for
(`KERAS_TESTED`), and `tests/models/test_keras_internals.py` fails loudly,
naming the hook, when a Keras upgrade changes any of them.

- `in_symbolic_build()`: whether Keras is tracing shapes with placeholder
  variables (`keras.src.backend.common` stateless and symbolic scopes). The
  GAN builds its two optimisers for their own variables only outside it.
- `PrivateHooks._maybe_symbolic_build`: Keras 3 builds a model created
  under a `tf.distribute` strategy from a first batch that it all-reduces
  across replicas (under MultiWorkerMirroredStrategy that fails on dict
  inputs, keras-team/keras#20329) and then builds `model.optimizer` for
  *all* trainable variables. The hook reads the strategy the model was
  created under (`Model._distribute_strategy`) and the first batch from
  Keras's epoch iterator, and hands them to the model's public
  `build_from_batch`.
- `PrivateHooks._trackable_children`: Keras 3 keeps sub-layers held in
  Python lists out of TensorFlow's object graph, so a
  `tf.train.Checkpoint(model=...)` would miss the frozen AU classifier's
  weights; the hook adds the model's `checkpoint_children`.
- `set_initial_epoch(model, epoch)`: `Model._initial_epoch`, where `fit`
  resumes counting epochs; resuming from a backup mid-run sets it.
"""

import inspect

KERAS_TESTED = "3.15.1"


def in_symbolic_build():
    """Whether Keras is tracing shapes only (its variables are placeholders then)."""
    try:
        from keras.src.backend.common.stateless_scope import in_stateless_scope
        from keras.src.backend.common.symbolic_scope import in_symbolic_scope
    except ImportError:  # another Keras layout: leave building to the first step
        return True
    return in_stateless_scope() or in_symbolic_scope()


class PrivateHooks:
    """Overrides of Keras's private hooks, delegating to public methods of the model.

    Mix in before `keras.Model`; the model defines `ready_to_fit()`,
    `build_from_batch(strategy, data_batch)` and
    `checkpoint_children(save_type)`.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy  # set when created under a strategy
        if strategy is None or self.ready_to_fit():
            return
        if iterator is not None:  # Keras's epoch iterator yields (step, step, batches)
            for _, _, batches in iterator:
                data_batch = next(batches)
                break
        self.build_from_batch(strategy, data_batch)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        for name, child in self.checkpoint_children(save_type).items():
            children.setdefault(name, child)
        return children


def set_initial_epoch(model, epoch):
    """Make `model.fit` count epochs from `epoch` (None: from its `initial_epoch`)."""
    model._initial_epoch = epoch


def changed_internals():
    """What of the above this Keras no longer has, as sentences (empty: all present)."""
    import keras

    problems = []
    for module, name in (
        ("keras.src.backend.common.stateless_scope", "in_stateless_scope"),
        ("keras.src.backend.common.symbolic_scope", "in_symbolic_scope"),
    ):
        try:
            getattr(__import__(module, fromlist=[name]), name)
        except (ImportError, AttributeError):
            problems.append(f"{module}.{name} is gone")
    hooks = (
        ("_maybe_symbolic_build", ("iterator", "data_batch")),
        ("_trackable_children", ("save_type",)),
    )
    for name, parameters in hooks:
        method = getattr(keras.Model, name, None)
        if method is None:
            problems.append(f"keras.Model.{name} is gone")
            continue
        found = tuple(inspect.signature(method).parameters)
        if not all(parameter in found for parameter in parameters):
            problems.append(f"keras.Model.{name} now takes {found}, not {parameters}")
    if not hasattr(keras.Model(), "_distribute_strategy"):
        problems.append("keras.Model no longer has _distribute_strategy")
    source = inspect.getsource(keras.Model.fit)
    if "_initial_epoch" not in source:
        problems.append("keras.Model.fit no longer reads self._initial_epoch")
    return problems
