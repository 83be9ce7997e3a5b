"""Does the output still look like the photo? Measures of a talking-head frame against its photo.

All in the photo's own pixels, with the photo's landmarks:

- `eye_region_psnr`: PSNR over the eye region (brows down to the bridge of
  the nose, between the outer brow ends), which speech should not change;
- `seam_ratio`: gradient energy along the lower-face mask's edge in the
  frame over the same in the photo (1: no seam; a rim or a step raises it);
- `sharpness_ratio`: variance of the Laplacian over the mouth region in the
  frame over the same in the photo (below 1: blurrier than the photo).
"""

import numpy as np
import scipy.ndimage

from keras_autalk.media.paste import lower_face_mask


def eye_region_box(landmarks):
    """`(left, top, right, bottom)`: brows (17-26) to the bridge of the nose (27-30)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    top = landmarks[17:27, 1].min()
    bottom = landmarks[27:31, 1].mean()
    left, right = landmarks[17:27, 0].min(), landmarks[17:27, 0].max()
    return int(np.floor(left)), int(np.floor(top)), int(np.ceil(right)), int(np.ceil(bottom))


def mouth_box(landmarks, margin=0.15):
    """The mouth's box (points 48-67), widened by `margin` of its size on each side."""
    mouth = np.asarray(landmarks, dtype=np.float64)[48:68]
    low, high = mouth.min(axis=0), mouth.max(axis=0)
    pad = margin * (high - low)
    low, high = low - pad, high + pad
    return (
        int(np.floor(low[0])),
        int(np.floor(low[1])),
        int(np.ceil(high[0])),
        int(np.ceil(high[1])),
    )


def _crop(image, box):
    left, top, right, bottom = box
    height, width = image.shape[:2]
    return image[max(0, top) : min(height, bottom), max(0, left) : min(width, right)]


def psnr(first, second, peak=255.0):
    """PSNR in dB of two uint8 images (inf when equal).

    Example:
    >>> round(psnr(np.zeros((2, 2)), np.full((2, 2), 25.5)), 1)
    20.0
    """
    error = np.mean((np.asarray(first, np.float64) - np.asarray(second, np.float64)) ** 2)
    return float("inf") if error == 0 else float(10.0 * np.log10(peak**2 / error))


def eye_region_psnr(frame, photo, landmarks):
    """PSNR of the frame's eye region against the photo's (dB)."""
    box = eye_region_box(landmarks)
    return psnr(_crop(frame, box), _crop(photo, box))


def _gradient_energy(gray):
    gy, gx = np.gradient(gray)
    return gx**2 + gy**2


def _gray(image):
    return np.asarray(image, np.float64)[..., :3].mean(axis=-1)


def seam_band(shape, landmarks, width=3):
    """Pixels within `width` of the lower-face mask's outer edge, as a boolean image."""
    mask = lower_face_mask(shape, landmarks) > 0
    grown = scipy.ndimage.binary_dilation(mask, iterations=width)
    shrunk = scipy.ndimage.binary_erosion(mask, iterations=width)
    return grown & ~shrunk


def seam_ratio(frame, photo, landmarks, band=None):
    """Mean gradient energy on the seam band of the frame over the photo's."""
    band = seam_band(photo.shape, landmarks) if band is None else band
    made = _gradient_energy(_gray(frame))[band].mean()
    own = _gradient_energy(_gray(photo))[band].mean()
    return float(made / max(own, 1e-9))


def laplacian_variance(image):
    """Variance of the Laplacian of the grey image: high for sharp detail."""
    return float(scipy.ndimage.laplace(_gray(image)).var())


def sharpness_ratio(frame, photo, landmarks):
    """Mouth-region sharpness of the frame over the photo's (`laplacian_variance`)."""
    box = mouth_box(landmarks)
    return laplacian_variance(_crop(frame, box)) / max(laplacian_variance(_crop(photo, box)), 1e-9)


def fidelity(frames, photo, landmarks, every=5):
    """Mean eye-region PSNR (and its minimum), seam ratio and mouth sharpness ratio.

    Args:
        frames: the video's `(n, h, w, 3)` uint8 frames: the photo's size, or
            one row or column more (H.264 needs even sides), which is left out.
        photo: the `(h, w, 3)` uint8 photo.
        landmarks: the photo's `(68, 2)` landmarks.
        every: measure every `every`-th frame.

    Returns:
        A dict: `eye_psnr_db`, `eye_psnr_min_db`, `seam_ratio`, `mouth_sharpness`.
    """
    band = seam_band(photo.shape, landmarks)
    height, width = photo.shape[:2]
    picked = [frame[:height, :width] for frame in list(frames)[:: max(1, int(every))]]
    eyes = [eye_region_psnr(frame, photo, landmarks) for frame in picked]
    return {
        "eye_psnr_db": float(np.mean(np.minimum(eyes, 99.0))),
        "eye_psnr_min_db": float(np.min(eyes)),
        "seam_ratio": float(
            np.mean([seam_ratio(frame, photo, landmarks, band) for frame in picked])
        ),
        "mouth_sharpness": float(
            np.mean([sharpness_ratio(frame, photo, landmarks) for frame in picked])
        ),
    }
