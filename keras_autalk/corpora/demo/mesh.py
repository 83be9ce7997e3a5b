"""Piecewise-affine warping of an image by a triangle mesh, in NumPy.

`warp_piecewise_affine` maps each triangle of the source points onto the
same triangle of the target points: a small rasteriser (per-triangle
bounding boxes, barycentric coordinates, bilinear sampling) that the demo
corpus's renderer uses to move a face's mouth, chin and cheeks smoothly.
"""

import numpy as np
from scipy.spatial import Delaunay


def triangle_coefficients(target, source, triangles):
    """Per triangle: barycentric rows (l1, l2) and the affine target->source map.

    Returns `(coefficients (n, 12), valid (n,))`; degenerate target
    triangles are not valid.
    """
    corners = target[triangles]  # (n, 3, 2)
    matrix = np.concatenate(
        [corners.transpose(0, 2, 1), np.ones((len(triangles), 1, 3))], axis=1
    )  # rows x, y, 1; columns the corners
    determinant = np.linalg.det(matrix)
    valid = np.abs(determinant) > 1e-6
    matrix[~valid] = np.eye(3)
    inverse = np.linalg.inv(matrix)  # barycentric = inverse @ (x, y, 1)
    affine = source[triangles].transpose(0, 2, 1) @ inverse  # (n, 2, 3)
    return np.concatenate([inverse[:, 1], inverse[:, 2], affine[:, 0], affine[:, 1]], axis=1), valid


def rasterise(target, source, triangles, height, width):
    """Map every pixel covered by the target triangles to source coordinates.

    Args:
        target: `(n, 2)` vertex positions in the output image.
        source: `(n, 2)` the same vertices in the source image.
        triangles: `(m, 3)` vertex indices.

    Returns:
        `(flat_index, source_x, source_y)` for the covered output pixels
        (pixel centres at integer coordinates).
    """
    coefficients, valid = triangle_coefficients(target, source, triangles)
    corners = target[triangles]
    x_low = np.clip(np.ceil(corners[..., 0].min(axis=1) - 1e-6), 0, width)
    x_high = np.clip(np.floor(corners[..., 0].max(axis=1) + 1e-6), -1, width - 1)
    y_low = np.clip(np.ceil(corners[..., 1].min(axis=1) - 1e-6), 0, height)
    y_high = np.clip(np.floor(corners[..., 1].max(axis=1) + 1e-6), -1, height - 1)
    box_width = np.maximum(x_high - x_low + 1, 0)
    counts = (box_width * np.maximum(y_high - y_low + 1, 0) * valid).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, np.float32)
        return empty.astype(np.int64), empty, empty
    # Coefficients relative to each box's top-left pixel: small numbers,
    # so float32 (twice as fast) stays accurate to ~1e-5 pixel.
    for column in (0, 3, 6, 9):
        coefficients[:, column + 2] += (
            coefficients[:, column] * x_low + coefficients[:, column + 1] * y_low
        )
    table = np.concatenate(
        [coefficients, np.stack([box_width, x_low, y_low], axis=1)], axis=1
    ).astype(np.float32)
    per_pixel = table[np.repeat(np.arange(len(triangles)), counts)]
    offset = np.arange(total, dtype=np.float32) - np.repeat(
        (np.cumsum(counts) - counts).astype(np.float32), counts
    )
    row = np.floor(offset / per_pixel[:, 12])
    column = offset - row * per_pixel[:, 12]
    l1 = per_pixel[:, 0] * column + per_pixel[:, 1] * row + per_pixel[:, 2]
    l2 = per_pixel[:, 3] * column + per_pixel[:, 4] * row + per_pixel[:, 5]
    tolerance = 1e-5
    inside = (l1 >= -tolerance) & (l2 >= -tolerance) & (l1 + l2 <= 1.0 + tolerance)
    per_pixel, row, column = per_pixel[inside], row[inside], column[inside]
    source_x = per_pixel[:, 6] * column + per_pixel[:, 7] * row + per_pixel[:, 8]
    source_y = per_pixel[:, 9] * column + per_pixel[:, 10] * row + per_pixel[:, 11]
    flat_index = (per_pixel[:, 14] + row).astype(np.int64) * width + (
        per_pixel[:, 13] + column
    ).astype(np.int64)
    return flat_index, source_x, source_y


def bilinear(flat_image, height, width, source_x, source_y):
    """Sample a `(height * width, 3)` float image at fractional coordinates."""
    source_x = np.clip(source_x, 0.0, width - 1.001)
    source_y = np.clip(source_y, 0.0, height - 1.001)
    x0 = source_x.astype(np.int64)
    y0 = source_y.astype(np.int64)
    fx = (source_x - x0)[:, None].astype(np.float32)
    fy = (source_y - y0)[:, None].astype(np.float32)
    index = y0 * width + x0
    top_left, top_right = flat_image[index], flat_image[index + 1]
    bottom_left, bottom_right = flat_image[index + width], flat_image[index + width + 1]
    top = top_left + (top_right - top_left) * fx
    bottom = bottom_left + (bottom_right - bottom_left) * fx
    return top + (bottom - top) * fy


def warp_piecewise_affine(image, source_points, target_points, triangles=None):
    """Warp a whole image so that `source_points` land on `target_points`.

    Pixels outside the triangulated area keep their place. Used for
    morphing identities; frame rendering uses a faster local version.

    Args:
        image: `(h, w, 3)` uint8 image.
        source_points, target_points: `(n, 2)` corresponding points; add
            the image corners to cover the whole frame.
        triangles: `(m, 3)` vertex indices (default: Delaunay of the target).

    Returns:
        The warped `(h, w, 3)` uint8 image.
    """
    height, width = image.shape[:2]
    source_points = np.asarray(source_points, dtype=np.float64)
    target_points = np.asarray(target_points, dtype=np.float64)
    if triangles is None:
        triangles = Delaunay(target_points).simplices
    flat = image.reshape(-1, 3).astype(np.float32)
    result = flat.copy()
    index, source_x, source_y = rasterise(target_points, source_points, triangles, height, width)
    result[index] = bilinear(flat, height, width, source_x, source_y)
    return np.clip(np.rint(result), 0, 255).astype(np.uint8).reshape(image.shape)
