"""The GAN's losses on inputs whose answers are known by hand."""

import numpy as np
import pytest

from keras_autalk.models import losses


def mouth_landmarks(x_min, y_min, x_max, y_max, shape=()):
    """68 landmarks far from the mouth, mouth points spanning the given box."""
    points = np.zeros(shape + (68, 2), np.float32)
    points[..., :48, :] = (1.0, 1.0)
    mouth = np.linspace((x_min, y_min), (x_max, y_max), 20, dtype=np.float32)
    points[..., 48:68, :] = mouth
    return points


def test_masked_frame_mean_averages_valid_frames_and_gives_zero_without_any():
    values = np.array([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]], np.float32)
    mask = np.array([[1, 1, 0], [0, 0, 0]], np.float32)
    np.testing.assert_allclose(np.asarray(losses.masked_frame_mean(values, mask)), [2.0, 0.0])


def test_mouth_boxes_span_mouth_points_only_plus_margin():
    landmarks = mouth_landmarks(10, 20, 18, 24)
    landmarks[30] = (100, 100)  # the nose tip, far away: ignored
    np.testing.assert_allclose(
        np.asarray(losses.mouth_boxes(landmarks, margin=0.0)), [10, 20, 18, 24]
    )
    # The margin is a fraction of the mouth width (8 px) on every side.
    np.testing.assert_allclose(
        np.asarray(losses.mouth_boxes(landmarks, margin=0.25)), [8, 18, 20, 26]
    )


def test_mouth_region_covers_pixels_whose_centres_are_in_the_box():
    landmarks = mouth_landmarks(2, 3, 4.5, 5, shape=(1, 1))
    region = np.asarray(losses.mouth_region(landmarks, 8, 10, margin=0.0))
    assert region.shape == (1, 1, 8, 10, 1)
    expected = np.zeros((8, 10), np.float32)
    expected[3:6, 2:5] = 1.0  # rows 3..5, columns 2..4 (4.5 excludes column 5)
    np.testing.assert_array_equal(region[0, 0, :, :, 0], expected)


def test_mouth_region_follows_each_frame():
    landmarks = np.stack([mouth_landmarks(0, 0, 1, 1), mouth_landmarks(5, 5, 6, 6)])[None]
    region = np.asarray(losses.mouth_region(landmarks, 8, 8, margin=0.0))
    assert region[0, 0, :2, :2].all() and region[0, 0].sum() == 4
    assert region[0, 1, 5:7, 5:7].all() and region[0, 1].sum() == 4


def test_l1_per_frame_is_the_mean_absolute_difference():
    real = np.zeros((2, 3, 4, 4, 3), np.float32)
    fake = np.zeros_like(real)
    fake[0, 1] = 0.5
    fake[1, 2, 0, 0, 0] = 4.8  # one value of 48 in the frame
    got = np.asarray(losses.l1_per_frame(real, fake))
    np.testing.assert_allclose(got, [[0, 0.5, 0], [0, 0, 0.1]], atol=1e-7)


def test_mouth_l1_averages_over_the_box_only():
    real = np.zeros((1, 2, 16, 16, 3), np.float32)
    fake = np.zeros_like(real)
    landmarks = mouth_landmarks(4, 8, 7, 11, shape=(1, 2))  # a 4x4 box
    fake[0, 0, 8:12, 4:8] = 0.3  # error inside the box only
    fake[0, 1, :4, :4] = 0.9  # error outside the box only
    got = np.asarray(losses.mouth_l1_per_frame(real, fake, landmarks, margin=0.0))
    np.testing.assert_allclose(got, [[0.3, 0.0]], atol=1e-6)
    # The whole-frame L1 of frame 0 is diluted by the frame's area.
    whole = np.asarray(losses.l1_per_frame(real, fake))
    np.testing.assert_allclose(whole[0, 0], 0.3 * 16 / 256, rtol=1e-5)


def test_mouth_l1_is_zero_for_a_box_outside_the_image():
    real = np.zeros((1, 1, 8, 8, 3), np.float32)
    landmarks = mouth_landmarks(50, 50, 60, 60, shape=(1, 1))
    got = np.asarray(losses.mouth_l1_per_frame(real, real + 1.0, landmarks))
    np.testing.assert_array_equal(got, [[0.0]])


def test_au_l1_per_frame_averages_over_units():
    target = np.array([[[0.0, 1.0, 5.0]]], np.float32)
    predicted = np.array([[[1.0, 1.0, 2.0]]], np.float32)
    np.testing.assert_allclose(
        np.asarray(losses.au_l1_per_frame(target, predicted)), [[4.0 / 3.0]], rtol=1e-6
    )


@pytest.mark.parametrize(
    "formulation, real, fake, d_expected, g_expected",
    [
        ("lsgan", 1.0, 0.0, 0.0, 0.5),
        ("lsgan", 0.0, 1.0, 1.0, 0.0),
        ("hinge", 2.0, -3.0, 0.0, 3.0),
        ("hinge", 0.0, 0.0, 2.0, 0.0),
        ("non_saturating", 0.0, 0.0, 2 * np.log(2.0), np.log(2.0)),
    ],
)
def test_adversarial_losses_known_values(formulation, real, fake, d_expected, g_expected):
    real_logits = np.full((2, 3, 3, 1), real, np.float32)
    fake_logits = np.full((2, 3, 3, 1), fake, np.float32)
    d = np.asarray(losses.discriminator_loss(real_logits, fake_logits, formulation))
    g = np.asarray(losses.generator_adversarial_loss(fake_logits, formulation))
    assert d.shape == g.shape == (2,)
    np.testing.assert_allclose(d, d_expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g, g_expected, rtol=1e-6, atol=1e-7)


def test_adversarial_losses_are_per_image_means_over_patches():
    fake_logits = np.zeros((2, 2, 2, 1), np.float32)
    fake_logits[1, 0, 0, 0] = 1.0  # one of image 1's four patches fools D
    g = np.asarray(losses.generator_adversarial_loss(fake_logits, "lsgan"))
    np.testing.assert_allclose(g, [0.5, 0.375])


def test_discriminator_loss_pulls_real_up_and_fake_down():
    import tensorflow as tf

    for formulation in losses.ADVERSARIAL_LOSSES:
        real = tf.Variable(tf.fill((1, 2, 2, 1), 0.5))
        fake = tf.Variable(tf.fill((1, 2, 2, 1), 0.5))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(losses.discriminator_loss(real, fake, formulation))
        grad_real, grad_fake = tape.gradient(loss, [real, fake])
        assert float(tf.reduce_max(grad_real)) < 0, formulation
        assert float(tf.reduce_min(grad_fake)) > 0, formulation
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(losses.generator_adversarial_loss(fake, formulation))
        assert float(tf.reduce_max(tape.gradient(loss, fake))) < 0, formulation


def test_unknown_adversarial_formulation_is_refused():
    with pytest.raises(ValueError, match="adversarial loss must be one of"):
        losses.generator_adversarial_loss(np.zeros((1, 1)), "wasserstein")
