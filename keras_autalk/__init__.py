"""keras-autalk: talking-head video from one face photo and speech.

Audio and speech-related facial action units drive a dilated non-causal
temporal convolutional self-attention fusion network and a GAN generator
(Chen et al., arXiv 2204.12756), in Keras 3 / TensorFlow.

Importing the package is cheap: TensorFlow loads only when a module that
needs it is imported.
"""

from keras_autalk.version import __version__

# Loaded on first use (module __getattr__, PEP 562), so `import keras_autalk`
# does not import TensorFlow.
_LAZY = {
    "AUTalker": ("keras_autalk.models.talker", "AUTalker"),
    "Preset": ("keras_autalk.presets.registry", "Preset"),
    "Talker": ("keras_autalk.inference.session", "Talker"),
    "generate": ("keras_autalk.inference.generate", "generate"),
    "get_preset": ("keras_autalk.presets.registry", "get_preset"),
    "list_presets": ("keras_autalk.presets.registry", "list_presets"),
    "load_pretrained": ("keras_autalk.presets.pretrained", "load_pretrained"),
    "register_preset": ("keras_autalk.presets.registry", "register_preset"),
    "save_pretrained": ("keras_autalk.presets.pretrained", "save_pretrained"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_autalk' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = [
    "AUTalker",
    "Preset",
    "Talker",
    "__version__",
    "generate",
    "get_preset",
    "list_presets",
    "load_pretrained",
    "register_preset",
    "save_pretrained",
]
