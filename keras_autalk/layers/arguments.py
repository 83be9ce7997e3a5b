"""Argument checks for the public layers, with Keras's own message style.

Keras layers check their arguments in `__init__` and name the value they
received ("... Received: filters=0"); these helpers do the same for the
package's layers, so a wrong argument fails where it is given, not deep in
`build` or, worse, builds silently.
"""


def positive_integer(name, value):
    """`value` as an `int`, or a `ValueError` naming the argument.

    Example:
    >>> positive_integer("filters", 8)
    8
    >>> positive_integer("filters", 0)
    Traceback (most recent call last):
    ...
    ValueError: `filters` must be a positive integer. Received: filters=0
    """
    try:
        number = int(value)
        whole = not isinstance(value, bool) and number == value
    except (TypeError, ValueError):
        whole = False
    if not whole or number < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return number


def rate(name, value):
    """`value` as a `float` in [0, 1), or a `ValueError` naming the argument.

    Example:
    >>> rate("dropout", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: `dropout` must be a number in [0, 1). Received: dropout=1.5
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not 0.0 <= number < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    return number


def divisible(name, value, by_name, by):
    """A `ValueError` unless `value` is a multiple of `by` (both already checked).

    Example:
    >>> divisible("channels", 10, "num_heads", 3)
    Traceback (most recent call last):
    ...
    ValueError: `channels` must be divisible by `num_heads`. Received: channels=10, num_heads=3
    """
    if value % by:
        raise ValueError(
            f"`{name}` must be divisible by `{by_name}`. Received: {name}={value}, {by_name}={by}"
        )
