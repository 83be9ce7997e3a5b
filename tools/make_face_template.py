"""Derive the 68-point alignment template in keras_autalk/media/face_template.py.

The template is the mean of the dlib landmarks of the two real photos that
ship inside installed packages (scikit-image's astronaut, matplotlib's
grace_hopper), each similarity-aligned to the other (Procrustes), averaged
with its own mirror image so it is exactly left-right symmetric, and
normalised so the landmarks span [0, 1] horizontally with the eyebrows'
top at y = 0.

Run: python tools/make_face_template.py > keras_autalk/media/face_template.py
"""

import numpy as np

from keras_autalk.media import face, photos

# Landmark i of a face is landmark MIRROR[i] of its mirror image.
MIRROR = (
    list(range(16, -1, -1))
    + list(range(26, 21, -1))
    + list(range(21, 16, -1))
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


def procrustes(points, reference):
    """`points` similarity-aligned onto `reference` (both (68, 2))."""
    matrix = face.estimate_similarity(points, reference)
    return face.apply_transform(matrix, points)


def main():
    shapes = []
    for name in ("astronaut", "grace_hopper"):
        # The highest-scoring HOG detection is the real face on both photos;
        # find_face itself cannot be used, as its checks need this template.
        image = photos.load_photo(name)
        box, _ = max(face.detect_faces(image), key=lambda found: found[1])
        shapes.append(face.fit_landmarks(image, box))
    reference = shapes[0]
    mean = np.mean([procrustes(s, reference) for s in shapes], axis=0)
    mirrored = mean.copy()
    mirrored[:, 0] = -mirrored[:, 0]
    mirrored = mirrored[MIRROR]
    mirrored = procrustes(mirrored, mean)
    symmetric = (mean + mirrored) / 2.0
    # Make the eye line horizontal.
    left_eye = symmetric[36:42].mean(axis=0)
    right_eye = symmetric[42:48].mean(axis=0)
    angle = np.arctan2(*(right_eye - left_eye)[::-1])
    rotation = np.array([[np.cos(-angle), -np.sin(-angle)], [np.sin(-angle), np.cos(-angle)]])
    symmetric = symmetric @ rotation.T
    symmetric -= symmetric.min(axis=0)
    symmetric /= symmetric[:, 0].max()
    print('"""The 68-point face template faces are aligned to (generated file).')
    print()
    print("Made by tools/make_face_template.py from the dlib landmarks of")
    print("scikit-image's astronaut and matplotlib's grace_hopper photos; x spans")
    print("[0, 1] and the eyebrows' top is at y = 0. Do not edit by hand.")
    print('"""')
    print()
    print("TEMPLATE_68 = (")
    for x, y in symmetric:
        print(f"    ({x:.6f}, {y:.6f}),")
    print(")")


if __name__ == "__main__":
    main()
