"""Reading user photos into 8-bit RGB arrays, whatever their format.

Handles the modes photos arrive in (RGBA, grayscale, palette, CMYK, 16-bit,
EXIF-rotated) and refuses images too small to hold a face or too large to
process, each with one sentence.
"""

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from keras_autalk.config import FaceConfig
from keras_autalk.errors import InputFileError
from keras_autalk.files import check_input_file


def to_rgb8(image):
    """Convert a PIL image of any mode to a uint8 RGB array `(h, w, 3)`.

    Transparent pixels are composited over white; 16- and 32-bit images are
    scaled to 8 bits by their nominal range.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image).astype(np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def check_image_size(width, height, config=FaceConfig(), name="image"):
    """Raise `InputFileError` if a `width` x `height` image cannot be used."""
    if min(width, height) < config.min_image_side:
        raise InputFileError(
            f"The {name} is {width}x{height} pixels; at least "
            f"{config.min_image_side} pixels on each side are needed to find a face."
        )
    if max(width, height) > config.max_image_side:
        raise InputFileError(
            f"The {name} is {width}x{height} pixels; the largest supported side is "
            f"{config.max_image_side} pixels, so resize it first."
        )


def load_image(path, config=FaceConfig()):
    """Read a photo as a uint8 RGB array `(h, w, 3)`.

    Args:
        path: any format Pillow reads (JPEG, PNG, WebP, BMP, TIFF, ...).
        config: `FaceConfig` with the accepted size range.

    Raises:
        InputFileError: missing, empty, not an image, truncated, or a size
            outside the accepted range.

    Example:
    ```python
    rgb = load_image("face.jpg")
    ```
    """
    path = check_input_file(path, "image")
    # The size check below replaces Pillow's decompression-bomb guard, so
    # that a huge image gets our sentence, not Pillow's exception.
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise InputFileError(
                f"The image '{path}' is not an image file Pillow can read."
            ) from None
        with image:
            check_image_size(*image.size, config=config, name=f"image '{path}'")
            try:
                image.load()
                image = ImageOps.exif_transpose(image)
                return to_rgb8(image)
            except (OSError, SyntaxError, ValueError) as error:
                raise InputFileError(
                    f"The image '{path}' is corrupt or truncated ({error})."
                ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
