"""media/warp.py: the NumPy backward warp and flow upsampling inference uses."""

import numpy as np
import pytest

from keras_autalk.media.warp import upsample_flow, warp_with_flow


def smooth_image(size):
    """A smooth colour image of the unit square, sampled at `size` pixel centres."""
    rows, cols = (np.mgrid[0:size, 0:size] + 0.5) / size
    return (
        np.stack([np.sin(9 * rows + 1), np.cos(8 * cols), np.sin(rows * cols * 12)], axis=-1) * 0.5
        + 0.5
    )


def test_zero_flow_returns_the_image_exactly_in_its_dtype(grace_hopper):
    zero = np.zeros(grace_hopper.shape[:2] + (2,))
    warped = warp_with_flow(grace_hopper, zero)
    assert warped.dtype == np.uint8
    np.testing.assert_array_equal(warped, grace_hopper)
    gray = grace_hopper[..., 0].astype(np.float32) / 255
    np.testing.assert_array_equal(warp_with_flow(gray, zero), gray)


def test_whole_pixel_flow_moves_pixels_and_repeats_the_border(rng):
    image = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    flow = np.zeros((6, 5, 2))
    flow[..., 1] = -2.0  # each pixel shows the one two rows above
    warped = warp_with_flow(image, flow)
    np.testing.assert_array_equal(warped[2:], image[:-2])
    np.testing.assert_array_equal(warped[:2], np.broadcast_to(image[0], (2, 5, 3)))


def test_half_pixel_flow_averages_neighbours():
    image = np.array([[0.0, 10.0, 20.0]], dtype=np.float32)
    flow = np.zeros((1, 3, 2))
    flow[..., 0] = 0.5
    np.testing.assert_allclose(warp_with_flow(image, flow), [[5.0, 15.0, 20.0]])


def test_warp_refuses_a_flow_of_another_size():
    with pytest.raises(ValueError, match=r"flow must be \(H, W, 2\) = \(4, 4, 2\)"):
        warp_with_flow(np.zeros((4, 4, 3)), np.zeros((8, 8, 2)))


def test_upsampled_flow_scales_its_vectors_with_each_axis():
    flow = np.zeros((4, 8, 2))
    flow[..., 0], flow[..., 1] = 1.5, -0.5
    big = upsample_flow(flow, (12, 16))
    assert big.shape == (12, 16, 2)
    np.testing.assert_allclose(big[..., 0], 3.0)  # 8 -> 16 wide
    np.testing.assert_allclose(big[..., 1], -1.5)  # 4 -> 12 high
    assert upsample_flow(flow, 16).shape == (16, 16, 2)
    with pytest.raises(ValueError, match=r"flow must be \(h, w, 2\)"):
        upsample_flow(np.zeros((4, 4)), 8)


def test_warping_big_with_the_upsampled_flow_is_the_upsampled_small_warp():
    # What inference relies on: the flow of the 32-px crop, applied to the
    # 128-px image, moves the same content as in the crop.
    size, scale = 32, 4
    rows, cols = np.mgrid[0:size, 0:size] / size
    flow = np.stack([2.0 * np.sin(3 * rows), 1.5 * np.cos(2 * cols)], axis=-1)
    small_warped = warp_with_flow(smooth_image(size), flow)
    big_warped = warp_with_flow(smooth_image(size * scale), upsample_flow(flow, size * scale))
    # Small pixel i is centred between big pixels 4i + 1 and 4i + 2.
    centres = sum(big_warped[row::scale, col::scale] for row in (1, 2) for col in (1, 2)) / 4
    inner = slice(4, -4)
    assert np.abs(centres[inner, inner] - small_warped[inner, inner]).max() < 0.02
    # The check can fail: the flow moves the image by far more than that.
    assert np.abs(small_warped - smooth_image(size))[inner, inner].max() > 0.1
