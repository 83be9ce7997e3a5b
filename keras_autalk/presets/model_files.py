"""Loading a trained model's `.keras` file, checked: one sentence when it is not one."""

from keras_autalk.native import import_tensorflow

import_tensorflow()
import keras  # noqa: E402


def load_model_file(path, expected_class, what, article="a", file_what=None):
    """A `.keras` model of `expected_class`, or one sentence saying what is wrong.

    Args:
        path: the `.keras` file.
        expected_class: the class the model must be (e.g. `AUClassifier`).
        what: what it is called in messages ("AU classifier").
        article: "a" or "an", before `what`.
        file_what: what the file is called when it is missing (default `what`).

    Raises:
        InputFileError: the file is missing, is not a keras-autalk model, or
            holds another kind of model.

    Example:
    ```python
    expert = load_model_file("runs/sync/sync_expert.keras", SyncExpert, "sync expert")
    ```
    """
    from keras_autalk.errors import InputFileError
    from keras_autalk.files import check_input_file

    path = check_input_file(path, file_what or what)
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as error:  # noqa: BLE001 - a foreign or damaged file
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputFileError(f"'{path}' is not a keras-autalk {what} ({first_line}).") from None
    if not isinstance(model, expected_class):
        raise InputFileError(f"'{path}' holds a {type(model).__name__}, not {article} {what}.")
    return model
