"""keras-autalk: talking-head video from one face photo and speech.

Audio and speech-related facial action units drive a dilated non-causal
temporal convolutional self-attention fusion network and a GAN generator
(Chen et al., arXiv 2204.12756), in Keras 3 / TensorFlow.

Importing the package is cheap: TensorFlow loads only when a module that
needs it is imported.
"""

from keras_autalk.version import __version__

__all__ = ["__version__"]
