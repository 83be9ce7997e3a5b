"""`AUTalker`: the talking-head GAN, with its own `compile`, `train_step` and `test_step`.

One photo and speech in, frames and AU curves out. Training follows the
keras.io GAN examples: `compile(g_optimizer, d_optimizer, ...)`, a
`train_step` that updates the discriminator and then the generator, and
`keras.metrics.Mean` trackers listed by `metrics`.

Losses (`keras_autalk.models.losses`), each averaged over the *global* batch
(`tf.nn.compute_average_loss`), so a step under `tf.distribute` equals a
single-device step on the same batch:

- "l1": mean absolute pixel error of the generated frames;
- "mouth_l1": the same inside each target frame's mouth box (landmarks
  48-67 plus a margin), averaged over the box, so mouth pixels weigh many
  times more than the rest;
- "adversarial": least-squares GAN (LSGAN) by default. The frame
  discriminator is a PatchGAN without spectral normalisation; LSGAN's
  quadratic loss keeps a useful gradient for generated frames the
  discriminator rejects confidently (where the original cross-entropy
  saturates) and penalises logits that run off, which hinge loss only does
  with a Lipschitz-constrained discriminator. "hinge" and "non_saturating"
  are available through `compile(adversarial_loss=...)`;
- "au_classifier": the frozen AU classifier's reading of the generated
  frames against the target AUs (L1, frames with `au_mask` 0 left out; off
  when the model has no classifier or its weight is 0);
- "audio2au": Audio2AU's prediction against the target AUs (L1, masked).

Frames without a face (`face_mask` 0) count in no image loss. During
training the generator is driven by the target AUs (teacher forcing) where
they are labelled and by Audio2AU's prediction where they are not.
"""

import keras
from keras import ops

from keras_autalk.config import ModelConfig
from keras_autalk.models import losses
from keras_autalk.models.keras_internals import PrivateHooks, in_symbolic_build
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()

# AU intensities are on OpenFace's 0-5 scale.
AU_MAX = 5.0
# The loss weights `compile` uses unless told otherwise. The pixel L1 terms
# against the adversarial term are balanced like pix2pix (100:1 on images in
# [-1, 1], i.e. 50:1 on images in [0, 1]); the AU terms are in intensity
# units (errors around 0.3-1), weighted to be about as large as the pixel
# terms (10 x 0.05).
DEFAULT_LOSS_WEIGHTS = {
    "l1": 10.0,
    "mouth_l1": 10.0,
    "adversarial": 0.2,
    "au_classifier": 1.0,
    "audio2au": 1.0,
}
DEFAULT_MOUTH_MARGIN = 0.25
METRIC_NAMES = (
    "g_loss",
    "d_loss",
    "l1_loss",
    "mouth_l1_loss",
    "adversarial_loss",
    "au_loss",
    "audio2au_loss",
)
GENERATOR_NETWORKS = (
    "audio_encoder",
    "audio2au",
    "au_encoder",
    "identity_encoder",
    "fusion",
    "decoder",
)


def _as_model_config(model_config):
    if model_config is None:
        return ModelConfig()
    if isinstance(model_config, ModelConfig):
        return model_config
    if isinstance(model_config, dict):
        return ModelConfig.from_dict(model_config)
    raise TypeError(
        f"model_config must be a ModelConfig or a dict, got {type(model_config).__name__}."
    )


def _frames_to_images(frames):
    """(B, T, H, W, C) -> (B*T, H, W, C)."""
    return ops.reshape(frames, (-1,) + tuple(frames.shape[2:]))


@keras.saving.register_keras_serializable(package="keras_autalk")
class AUTalker(PrivateHooks, keras.Model):
    """The AU- and audio-driven talking-head GAN.

    Holds the generator's networks (audio encoder, Audio2AU, AU encoder,
    identity encoder, fusion, frame decoder; see `build_networks`), the
    frame discriminator and, optionally, a pre-trained AU classifier that
    is frozen here (`trainable=False`).

    Args:
        model_config: a `ModelConfig` or its `to_dict()`; None: the defaults.
        au_classifier: a trained `AUClassifier` for the same AUs and image
            size, or None (the AU-classifier loss is then off).
        **kwargs: `keras.Model` arguments (e.g. `name`).

    Call arguments:
        inputs: a dict with "identity_image" (B, H, W, 3) in [0, 1] and
            "audio_features" (B, T, context, bins); optional
            "au_intensity" (B, T, A) to drive with instead of Audio2AU's
            prediction (teacher forcing), optional "au_mask" (B, T) (frames
            with 0 fall back to the prediction), optional "articulation"
            (a float32 array or tensor, scalar or (B,); Keras refuses plain
            Python floats among the inputs) scaling the driving AUs (clipped
            to 0-5).
        training: enables dropout.

    Returns (from `call`):
        A dict: "frames" (B, T, H, W, 3) in [0, 1], "au_intensity"
        (B, T, A) Audio2AU's prediction (scaled by "articulation" when
        given), "blend_mask" (B, T, H, W, 1); with the flow decoder
        (`ModelConfig.decoder="flow"`) also "flow" (B, T, H, W, 2), where
        each lower-face pixel comes from in the identity image (crop pixels).

    Training: `fit` on `(inputs, targets)` from
    `keras_autalk.datasets.pipeline.make_dataset` (the batch is the global batch
    under `tf.distribute`; create and compile the model inside
    `strategy.scope()`). Saving: `.keras` files keep the compile settings and
    both optimisers' state; `tf.train.Checkpoint(model=model)` and
    `save_weights` restore every weight and both optimisers into a built,
    compiled model.

    Example:
    ```python
    model = AUTalker(model_config("small"), au_classifier=classifier)
    model.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                  d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    model.fit(make_dataset(files, batch_size=8, seed=1), epochs=10)
    outputs = model({"identity_image": photo, "audio_features": features})
    ```
    """

    def __init__(self, model_config=None, au_classifier=None, **kwargs):
        super().__init__(**kwargs)
        from keras_autalk.models import build_networks

        self.model_config = _as_model_config(model_config)
        networks = build_networks(self.model_config)
        self.audio_encoder = networks["audio_encoder"]
        self.audio2au = networks["audio2au"]
        self.au_encoder = networks["au_encoder"]
        self.identity_encoder = networks["identity_encoder"]
        self.fusion = networks["fusion"]
        self.decoder = networks["decoder"]
        self.discriminator = networks["discriminator"]
        if au_classifier is not None:
            units = tuple(getattr(au_classifier, "action_units", self.model_config.action_units))
            if units != tuple(self.model_config.action_units):
                raise ValueError(
                    f"The AU classifier reads action units {units}, but the model drives "
                    f"{tuple(self.model_config.action_units)}."
                )
            au_classifier.trainable = False
        self.au_classifier = au_classifier
        self.trackers = [keras.metrics.Mean(name=name) for name in METRIC_NAMES]
        self.g_optimizer = None
        self.d_optimizer = None
        self.gan_loss_weights = dict(DEFAULT_LOSS_WEIGHTS)
        self.adversarial_loss = "lsgan"
        self.mouth_margin = DEFAULT_MOUTH_MARGIN
        self._built_input_shapes = None

    @classmethod
    def from_preset(cls, preset, load_weights=True):
        """A built `AUTalker` from a preset name or a model folder.

        An architecture ("small", "paper") gives a new untrained model; a
        pretrained model ("demo", or a folder `save_pretrained` wrote) gives
        it loaded (`load_pretrained`: the process's shared instance, so copy
        it before changing its weights). `keras_autalk.presets.registry`
        lists the names (`autalk presets`).

        Args:
            preset: a preset name or the path of a model folder.
            load_weights: False builds a pretrained model's architecture
                untrained (its weights are not read).

        Returns:
            An `AUTalker` built for any batch and clip length; no AU
            classifier (give one to `AUTalker(...)` to train with it).

        Raises:
            PretrainedModelError: an unknown name (the known ones are
                listed), or a folder that is not a model, in one sentence.

        Example:
        ```python
        untrained = AUTalker.from_preset("small")
        demo = AUTalker.from_preset("demo")
        outputs = demo({"identity_image": crop[None], "audio_features": features[None]})
        ```
        """
        # Through the package's lazy exports: models/ may not import presets/
        # (which reads files and builds this class); the registry loads on use.
        import keras_autalk
        from keras_autalk.config import AudioConfig

        found = keras_autalk.get_preset(preset)
        if found.has_weights and load_weights:
            return keras_autalk.load_pretrained(found.path)
        audio, size = AudioConfig(), found.config.image_size
        model = cls(found.config)
        model.build(
            {
                "identity_image": (None, size, size, 3),
                "audio_features": (None, None, audio.context_steps, audio.num_mel_bins),
            }
        )
        return model

    # ----------------------------------------------------------------- model
    @property
    def generator_variables(self):
        """The trainable variables the generator optimiser updates."""
        variables = []
        for name in GENERATOR_NETWORKS:
            network = getattr(self, name)
            if network is not None:
                variables.extend(network.trainable_variables)
        return variables

    @property
    def discriminator_variables(self):
        """The trainable variables the discriminator optimiser updates."""
        return list(self.discriminator.trainable_variables)

    def build(self, input_shape):
        """Creates every network's variables (generator, discriminator, classifier).

        Args:
            input_shape: a dict of shapes with at least "identity_image"
                (B, H, W, 3) and "audio_features" (B, T, context, bins).
        """
        image_shape = tuple(input_shape["identity_image"])
        audio_shape = tuple(input_shape["audio_features"])
        self._built_input_shapes = {
            "identity_image": [None] + list(image_shape[1:]),
            "audio_features": [None] + list(audio_shape[1:]),
        }
        # One tiny forward pass builds the generator's networks in the order
        # `call` uses them; the discriminator and classifier are not in `call`.
        identity = ops.zeros((1,) + image_shape[1:])
        audio = ops.zeros((1, audio_shape[1] or 2) + audio_shape[2:])
        self.call({"identity_image": identity, "audio_features": audio})
        self.discriminator([identity, identity])
        if self.au_classifier is not None and not self.au_classifier.built:
            self.au_classifier(identity)
        self.built = True
        if self.g_optimizer is not None and not in_symbolic_build():
            self.build_optimizers()

    def get_build_config(self):
        if self._built_input_shapes is None:
            return None
        return {"input_shape": self._built_input_shapes}

    def call(self, inputs, training=False):
        identity_image = inputs["identity_image"]
        audio_features = inputs["audio_features"]
        predicted = self.audio2au(audio_features, training=training)
        articulation = inputs.get("articulation")
        if articulation is not None:
            scale = ops.reshape(ops.cast(articulation, predicted.dtype), (-1, 1, 1))
            predicted = ops.clip(predicted * scale, 0.0, AU_MAX)
        driving = predicted
        given = inputs.get("au_intensity")
        if given is not None:
            given = ops.cast(given, predicted.dtype)
            if articulation is not None:
                given = ops.clip(given * scale, 0.0, AU_MAX)
            au_mask = inputs.get("au_mask")
            if au_mask is None:
                driving = given
            else:
                labelled = ops.expand_dims(ops.cast(au_mask, "float32") > 0.5, -1)
                driving = ops.where(labelled, given, ops.stop_gradient(predicted))
        embedding, skips = self.identity_encoder(identity_image, training=training)
        audio_stream = (
            self.audio_encoder(audio_features, training=training)
            if self.audio_encoder is not None
            else None
        )
        au_stream = (
            self.au_encoder(driving, training=training) if self.au_encoder is not None else None
        )
        fused = self.fusion([audio_stream, au_stream, embedding], training=training)
        frames, blend_mask, *motion = self.decoder(
            [fused, skips, identity_image], training=training
        )
        outputs = {"frames": frames, "au_intensity": predicted, "blend_mask": blend_mask}
        if motion:  # the flow decoder: where each pixel of the lower face comes from
            outputs["flow"] = motion[0]
        return outputs

    # --------------------------------------------------------------- compile
    def compile(
        self,
        g_optimizer,
        d_optimizer,
        loss_weights=None,
        adversarial_loss="lsgan",
        mouth_margin=DEFAULT_MOUTH_MARGIN,
        jit_compile=False,
        **kwargs,
    ):
        """Configures training.

        Args:
            g_optimizer: the generator's optimiser (also `model.optimizer`,
                so callbacks that read the learning rate or step see it).
            d_optimizer: the discriminator's optimiser.
            loss_weights: a dict overriding some of `DEFAULT_LOSS_WEIGHTS`
                ("l1", "mouth_l1", "adversarial", "au_classifier",
                "audio2au"); 0 turns a term off.
            adversarial_loss: "lsgan" (default), "hinge" or "non_saturating".
            mouth_margin: padding of the mouth box, a fraction of the
                mouth's width.
            jit_compile: compile the train step with XLA.
            **kwargs: other `keras.Model.compile` arguments (e.g.
                `steps_per_execution`, `run_eagerly`).

        Example:
        ```python
        model.compile(keras.optimizers.Adam(2e-4, beta_1=0.5),
                      keras.optimizers.Adam(2e-4, beta_1=0.5),
                      loss_weights={"au_classifier": 0.0})
        ```
        """
        weights = dict(DEFAULT_LOSS_WEIGHTS)
        unknown = sorted(set(loss_weights or {}) - set(weights))
        if unknown:
            raise ValueError(f"Unknown loss weights {unknown}; the losses are {sorted(weights)}.")
        weights.update({key: float(value) for key, value in (loss_weights or {}).items()})
        if adversarial_loss not in losses.ADVERSARIAL_LOSSES:
            raise ValueError(
                f"adversarial_loss must be one of {losses.ADVERSARIAL_LOSSES}, "
                f"got {adversarial_loss!r}."
            )
        g_optimizer = keras.optimizers.get(g_optimizer)
        d_optimizer = keras.optimizers.get(d_optimizer)
        if self.dtype_policy.name == "mixed_float16":
            scaled = keras.optimizers.LossScaleOptimizer
            if not isinstance(g_optimizer, scaled):
                g_optimizer = scaled(g_optimizer, name="g_loss_scale_optimizer")
            if not isinstance(d_optimizer, scaled):
                d_optimizer = scaled(d_optimizer, name="d_loss_scale_optimizer")
        super().compile(
            optimizer=g_optimizer, jit_compile=jit_compile, auto_scale_loss=False, **kwargs
        )
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.gan_loss_weights = weights
        self.adversarial_loss = adversarial_loss
        self.mouth_margin = float(mouth_margin)
        self._gan_compile_config = {
            "g_optimizer": keras.saving.serialize_keras_object(g_optimizer),
            "d_optimizer": keras.saving.serialize_keras_object(d_optimizer),
            "loss_weights": weights,
            "adversarial_loss": adversarial_loss,
            "mouth_margin": self.mouth_margin,
            "jit_compile": jit_compile,
        }
        if self.built:
            self.build_optimizers()

    def build_optimizers(self):
        """Creates both optimisers' variables for the networks they update.

        Done as soon as the model is built and compiled, so that
        checkpoints, `BackupAndRestore` and `.keras` files restore both
        optimisers' state before the first step.
        """
        with self.distribute_strategy.scope():
            if not self.g_optimizer.built:
                self.g_optimizer.build(self.generator_variables)
            if not self.d_optimizer.built:
                self.d_optimizer.build(self.discriminator_variables)

    def make_train_function(self, force=False):
        # Keras would otherwise build `model.optimizer` (the generator's)
        # for *all* trainable variables when `BackupAndRestore` restores.
        if self.built and self.g_optimizer is not None:
            self.build_optimizers()
        return super().make_train_function(force=force)

    def ready_to_fit(self):
        """Whether the model and both optimisers are built."""
        return (
            self.built
            and self.g_optimizer is not None
            and self.g_optimizer.built
            and self.d_optimizer.built
        )

    def build_from_batch(self, strategy, data_batch):
        """Build the model and both optimisers from the first batch `fit` sees.

        Called through `keras_internals.PrivateHooks` (see there why) for a
        model created under `strategy`. Only the input shapes matter: one
        replica's part of the batch gives them, and the model builds itself
        and both optimisers for their own variables.
        """
        inputs = tf.nest.map_structure(
            lambda value: (
                strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues)
                else value
            ),
            data_batch[0],
        )
        with strategy.scope():
            if not self.built:
                self.build({name: tuple(value.shape) for name, value in inputs.items()})
            if self.g_optimizer is not None:
                self.build_optimizers()

    def get_compile_config(self):
        if self.compiled and hasattr(self, "_gan_compile_config"):
            return dict(self._gan_compile_config)
        return {}

    def compile_from_config(self, config):
        config = dict(config)
        config["g_optimizer"] = keras.saving.deserialize_keras_object(config["g_optimizer"])
        config["d_optimizer"] = keras.saving.deserialize_keras_object(config["d_optimizer"])
        self.compile(**config)

    @property
    def metrics(self):
        return list(self.trackers)

    # ---------------------------------------------------------------- losses
    def _average(self, per_example):
        """Mean over the global batch: what each replica adds to the all-reduced sum."""
        return tf.nn.compute_average_loss(per_example)

    def _discriminator_losses(self, real, fake, identity_image, face_mask, training):
        """Per-example discriminator loss `(B,)`."""
        steps = ops.shape(real)[1]
        identity = ops.repeat(identity_image, steps, axis=0)
        real_logits = self.discriminator([_frames_to_images(real), identity], training=training)
        fake_logits = self.discriminator([_frames_to_images(fake), identity], training=training)
        per_frame = ops.reshape(
            losses.discriminator_loss(real_logits, fake_logits, self.adversarial_loss),
            ops.shape(face_mask),
        )
        return losses.masked_frame_mean(per_frame, face_mask)

    def _generator_losses(self, inputs, targets, outputs, training):
        """Per-example generator loss terms `{name: (B,)}` keyed as the loss weights."""
        real = targets["frames"]
        fake = outputs["frames"]
        face_mask = ops.cast(targets["face_mask"], "float32")
        au_mask = ops.cast(targets["au_mask"], "float32")
        weights = self.gan_loss_weights
        terms = {
            "l1": losses.masked_frame_mean(losses.l1_per_frame(real, fake), face_mask),
            "mouth_l1": losses.masked_frame_mean(
                losses.mouth_l1_per_frame(real, fake, targets["landmarks"], self.mouth_margin),
                face_mask,
            ),
            "audio2au": losses.masked_frame_mean(
                losses.au_l1_per_frame(targets["au_intensity"], outputs["au_intensity"]), au_mask
            ),
        }
        zeros = ops.zeros_like(terms["l1"])
        if weights["adversarial"] or not training:
            steps = ops.shape(fake)[1]
            identity = ops.repeat(inputs["identity_image"], steps, axis=0)
            logits = self.discriminator([_frames_to_images(fake), identity], training=training)
            per_frame = ops.reshape(
                losses.generator_adversarial_loss(logits, self.adversarial_loss),
                ops.shape(face_mask),
            )
            terms["adversarial"] = losses.masked_frame_mean(per_frame, face_mask)
        else:
            terms["adversarial"] = zeros
        if self.au_classifier is not None and (weights["au_classifier"] or not training):
            read = self.au_classifier(_frames_to_images(fake), training=False)
            read = ops.reshape(read, ops.shape(targets["au_intensity"]))
            terms["au_classifier"] = losses.masked_frame_mean(
                losses.au_l1_per_frame(targets["au_intensity"], read), au_mask * face_mask
            )
        else:
            terms["au_classifier"] = zeros
        return terms

    def _generator_inputs(self, inputs, targets):
        return {
            "identity_image": inputs["identity_image"],
            "audio_features": inputs["audio_features"],
            "au_intensity": targets["au_intensity"],
            "au_mask": targets["au_mask"],
        }

    def _update_trackers(self, g_loss, d_loss, terms):
        values = {
            "g_loss": g_loss,
            "d_loss": d_loss,
            "l1_loss": terms["l1"],
            "mouth_l1_loss": terms["mouth_l1"],
            "adversarial_loss": terms["adversarial"],
            "au_loss": terms["au_classifier"],
            "audio2au_loss": terms["audio2au"],
        }
        # Per-example values: each replica adds its examples' sum and count,
        # so the trackers hold the global-batch mean.
        for tracker in self.trackers:
            tracker.update_state(values[tracker.name])
        logs = {tracker.name: tracker.result() for tracker in self.trackers}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 averages step outputs across workers with
            # `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
            # (tensorflow/tensorflow#72388); shape (1,) reduces to the same value.
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def _weighted_sum(self, terms):
        return sum(self.gan_loss_weights[name] * value for name, value in terms.items())

    # ----------------------------------------------------------------- steps
    def train_step(self, data):
        inputs, targets = data[0], data[1]
        face_mask = ops.cast(targets["face_mask"], "float32")
        with tf.GradientTape() as g_tape:
            outputs = self(self._generator_inputs(inputs, targets), training=True)
            # Discriminator update on this step's generated frames.
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    d_per_example = self._discriminator_losses(
                        targets["frames"],
                        outputs["frames"],
                        inputs["identity_image"],
                        face_mask,
                        training=True,
                    )
                    d_loss = self.d_optimizer.scale_loss(self._average(d_per_example))
                d_variables = self.discriminator_variables
                d_gradients = d_tape.gradient(d_loss, d_variables)
                self.d_optimizer.apply_gradients(zip(d_gradients, d_variables))
            # Generator update against the updated discriminator.
            terms = self._generator_losses(inputs, targets, outputs, training=True)
            g_per_example = self._weighted_sum(terms)
            g_loss = self.g_optimizer.scale_loss(self._average(g_per_example))
        g_variables = self.generator_variables
        g_gradients = g_tape.gradient(g_loss, g_variables)
        self.g_optimizer.apply_gradients(zip(g_gradients, g_variables))
        return self._update_trackers(g_per_example, d_per_example, terms)

    def test_step(self, data):
        inputs, targets = data[0], data[1]
        outputs = self(self._generator_inputs(inputs, targets), training=False)
        d_per_example = self._discriminator_losses(
            targets["frames"],
            outputs["frames"],
            inputs["identity_image"],
            ops.cast(targets["face_mask"], "float32"),
            training=False,
        )
        terms = self._generator_losses(inputs, targets, outputs, training=False)
        return self._update_trackers(self._weighted_sum(terms), d_per_example, terms)

    # ---------------------------------------------------------- serialising
    def checkpoint_children(self, save_type="checkpoint"):
        """Every weight, keyed by its position, for TensorFlow checkpoints.

        Added to the object graph through `keras_internals.PrivateHooks`
        (see there why); names get uniquified across instances, positions
        do not.
        """
        if save_type != "checkpoint" or not self.built:
            return {}
        return {f"weight_{index:04d}": variable for index, variable in enumerate(self.weights)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model_config": self.model_config.to_dict(),
                "au_classifier": (
                    keras.saving.serialize_keras_object(self.au_classifier)
                    if self.au_classifier is not None
                    else None
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("au_classifier") is not None:
            config["au_classifier"] = keras.saving.deserialize_keras_object(config["au_classifier"])
        return cls(**config)


__all__ = ["AUTalker", "DEFAULT_LOSS_WEIGHTS", "METRIC_NAMES"]
