"""Real face photos that ship inside installed packages (no downloads).

`astronaut` comes with scikit-image and `grace_hopper` with matplotlib; they
are the package's test faces and the demo corpus's identities.
"""

import numpy as np

PHOTO_NAMES = ("astronaut", "grace_hopper")


def load_photo(name):
    """Return the bundled photo `name` as a uint8 RGB array `(h, w, 3)`.

    Example:
    ```python
    rgb = load_photo("grace_hopper")  # (600, 512, 3)
    ```
    """
    if name == "astronaut":
        from skimage import data

        return np.ascontiguousarray(data.astronaut()[..., :3])
    if name == "grace_hopper":
        import matplotlib.cbook
        from PIL import Image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(Image.open(handle).convert("RGB"), dtype=np.uint8)
    raise ValueError(f"Unknown photo {name!r}; choose one of {PHOTO_NAMES}.")
