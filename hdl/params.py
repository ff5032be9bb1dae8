"""Parameter validation shared by every block: one rule, one message format.

Each block validates its parameters once, in its own package (``router/params.py``,
``pe/params.py``, ...), with these helpers. The rule is the same everywhere (as in
amaranth-soc): a value of the wrong type raises :class:`TypeError`, a value of the right type
outside its legal range raises :class:`ValueError`, and both messages name the parameter, its
legal range and the value given.
"""

from __future__ import annotations

import numbers

__all__ = ["check_int", "check_bool"]


def check_int(name: str, value: object, minimum: int, maximum: int | None = None,
              unit: str = "") -> int:
    """Validate an integer parameter.

    Parameters
    ----------
    name : str
        The parameter's name, as the caller spells it (``"num_colors"``).
    value : object
        The value given.
    minimum, maximum : int
        Legal range, inclusive; ``maximum=None`` means no upper limit.
    unit : str
        Unit or remark appended to the range in the message (``"32-bit words"``).

    Returns
    -------
    int
        ``value`` as a Python ``int``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (numpy integers count; ``bool`` does not).
    ValueError
        If ``value`` is outside ``minimum .. maximum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    suffix = f" {unit}" if unit else ""
    if maximum is None:
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}{suffix}, not {value}")
    elif not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}{suffix}, not {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    """Validate a boolean parameter.

    Raises
    ------
    TypeError
        If ``value`` is not a ``bool``.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value
