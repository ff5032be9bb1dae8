"""Argument checks shared by every sub-package of sim/: the one integer checker (the RTL's,
:func:`hdl.params.check_int`, so the rule is the same everywhere) and the one real-number
checker (``TypeError`` for a wrong type, ``ValueError`` for a wrong value, the legal range in
the message)."""

from __future__ import annotations

import math
import numbers

from hdl.params import check_int

__all__ = ["check_int", "check_real"]


def check_real(name: str, value: object, *, positive: bool, unit: str) -> float:
    """``value`` as a ``float`` if it is a finite real number, ``> 0`` if ``positive``, else
    ``>= 0``; ``unit`` goes into the messages.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (``bool`` is not).
    ValueError
        If it is not finite or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number ({unit}), not {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite ({unit}), not {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0 {unit}, not {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 {unit}, not {value}")
    return value
