"""The `align` task: photo in, aligned face crop (and landmarks JSON) out.

`autalk align` (`keras_autalk.commands.align`) runs it.
"""

import contextlib
import dataclasses
import json
import pathlib
from typing import List

import numpy as np
from PIL import Image

from keras_autalk.config import FaceConfig
from keras_autalk.errors import InputFileError
from keras_autalk.files import (
    atomic_output,
    check_output_path,
    refuse_overwriting_inputs,
    same_file,
)
from keras_autalk.media import face, image

CROP_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


@dataclasses.dataclass
class AlignResult:
    """What `align_photo` found and wrote.

    Attributes:
        face: the chosen `face.Face`.
        aligned: the `face.AlignedFace` (crop, transform, crop landmarks).
        notes: messages for the user (several faces, rejected detections).
    """

    face: face.Face
    aligned: face.AlignedFace
    notes: List[str]


def face_config(size=None, detector=None):
    """A `FaceConfig` with the given crop size and detector (None: defaults)."""
    changes = {}
    if size is not None:
        changes["crop_size"] = size
    if detector is not None:
        changes["detector"] = detector
    try:
        return dataclasses.replace(FaceConfig(), **changes)
    except ValueError as error:
        raise InputFileError(str(error)) from None


def landmarks_record(image_path, photo, found, aligned, config):
    """The JSON-ready description of one alignment."""
    return {
        "image": str(image_path),
        "image_size": [int(photo.shape[1]), int(photo.shape[0])],
        "box": [int(v) for v in found.box],
        "score": round(float(found.score), 4),
        "num_faces": found.num_faces,
        "landmarks": np.round(found.landmarks, 2).tolist(),
        "crop_size": config.crop_size,
        "crop_landmarks": np.round(aligned.landmarks, 2).tolist(),
        "image_to_crop": np.round(aligned.matrix, 6).tolist(),
    }


def format_json(record):
    """`record` as JSON with one key per line and each value on its line."""
    body = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in record.items())
    return "{\n" + body + "\n}\n"


def align_photo(
    image_path, crop_path, landmarks_path=None, config=FaceConfig(), face_index=None, face_box=None
):
    """Find the face in `image_path`, write its aligned crop (and landmarks).

    Both outputs are checked before any work and written atomically.

    Returns:
        An `AlignResult`.
    """
    crop_path = check_output_path(crop_path, "crop image")
    crop_format = CROP_FORMATS.get(crop_path.suffix.lower())
    if crop_format is None:
        raise InputFileError(
            f"Cannot write the crop as '{crop_path.suffix or crop_path.name}'; "
            f"use one of {', '.join(sorted(CROP_FORMATS))}."
        )
    if landmarks_path is not None:
        check_output_path(landmarks_path, "landmarks file")
        if same_file(landmarks_path, crop_path):
            raise InputFileError("The crop and the landmarks file cannot be the same file.")
    refuse_overwriting_inputs(
        [("crop image", crop_path), ("landmarks file", landmarks_path)], [("photo", image_path)]
    )
    photo = image.load_image(image_path, config)
    found = face.find_face(photo, config, face_index=face_index, face_box=face_box)
    aligned = face.align_face(photo, found.landmarks, config)
    # Both files are written before either is renamed into place.
    with contextlib.ExitStack() as stack:
        temporary = stack.enter_context(atomic_output(crop_path, "crop image"))
        Image.fromarray(aligned.crop).save(temporary, format=crop_format)
        if landmarks_path is not None:
            record = landmarks_record(pathlib.Path(image_path), photo, found, aligned, config)
            temporary = stack.enter_context(atomic_output(landmarks_path, "landmarks file"))
            temporary.write_text(format_json(record))
    return AlignResult(face=found, aligned=aligned, notes=face.face_notes(found, "using"))
