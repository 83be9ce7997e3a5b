"""Reading photos of every common mode, and refusing unusable ones."""

import numpy as np
import pytest
from PIL import Image

from keras_autalk.config import FaceConfig
from keras_autalk.errors import InputFileError
from keras_autalk.media import image


@pytest.fixture()
def rgb(grace_hopper):
    return grace_hopper[:200, :160]


def test_rgb_jpeg_round_trip(tmp_path, rgb):
    path = tmp_path / "face.png"
    Image.fromarray(rgb).save(path)
    loaded = image.load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == rgb.shape
    np.testing.assert_array_equal(loaded, rgb)


def test_rgba_is_composited_over_white(tmp_path, rgb):
    alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    alpha[:, :80] = 0  # left half fully transparent
    path = tmp_path / "face.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    loaded = image.load_image(path)
    assert loaded.shape == rgb.shape
    assert np.all(loaded[:, :80] == 255)
    np.testing.assert_array_equal(loaded[:, 80:], rgb[:, 80:])


def test_grayscale_becomes_three_equal_channels(tmp_path, rgb):
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    loaded = image.load_image(path)
    assert loaded.shape == rgb.shape
    for channel in range(3):
        np.testing.assert_array_equal(loaded[..., channel], gray)


def test_16_bit_png_is_scaled_to_8_bit(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (100, 1))
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    loaded = image.load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (100, 256, 3)
    assert loaded[0, 0, 0] == 0 and loaded[0, -1, 0] == 255
    assert np.all(np.diff(loaded[0, :, 0].astype(int)) >= 0)


def test_cmyk_jpeg_and_palette_png_become_rgb(tmp_path, rgb):
    cmyk_path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(cmyk_path, quality=95)
    palette_path = tmp_path / "palette.png"
    Image.fromarray(rgb).convert("P").save(palette_path)
    for path in (cmyk_path, palette_path):
        loaded = image.load_image(path)
        assert loaded.shape == rgb.shape
        assert np.abs(loaded.astype(int) - rgb).mean() < 20


def test_exif_rotation_is_applied(tmp_path, rgb):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    loaded = image.load_image(path)
    assert loaded.shape == (rgb.shape[1], rgb.shape[0], 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda folder: folder / "missing.jpg", "does not exist"),
        (lambda folder: folder, "is a directory"),
        (lambda folder: _write(folder / "empty.jpg", b""), "is empty"),
        (lambda folder: _write(folder / "noise.jpg", bytes(range(256)) * 40), "not an image"),
    ],
)
def test_bad_files_raise_one_sentence(tmp_path, make, message):
    with pytest.raises(InputFileError, match=message) as caught:
        image.load_image(make(tmp_path))
    assert "\n" not in str(caught.value)


def test_truncated_jpeg_raises(tmp_path, rgb):
    path = tmp_path / "cut.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="corrupt or truncated"):
        image.load_image(path)


def test_tiny_image_is_refused(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    with pytest.raises(InputFileError, match="1x1 pixels; at least 64"):
        image.load_image(path)


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (12000, 12000)).save(path, optimize=False, compress_level=1)
    with pytest.raises(InputFileError, match="12000x12000 pixels; the largest supported side"):
        image.load_image(path, FaceConfig())


def _write(path, data):
    path.write_bytes(data)
    return path
