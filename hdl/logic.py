"""Small combinational building blocks written as logic levels, not arithmetic.

Yosys turns every ``<``, ``<=``, ``>``, ``>=`` into an ``$alu`` cell, and ``synth_ecp5`` maps
each ``$alu`` to a carry chain (``CCU2C``), even when one side is a constant: a 2-bit
occupancy counter compared with 2 then costs a chain of carry cells, slower and larger than
the one or two LUTs the comparison needs. The helpers here build such comparisons from
AND/OR terms of the bits, which ABC maps to LUTs.
"""

from __future__ import annotations

from amaranth.hdl import Const, Value

__all__ = ["at_least"]


def at_least(value, k: int) -> Value:
    """``value >= k`` for an unsigned ``value`` and a constant ``k``, as AND/OR logic.

    Any bit above ``k``'s width makes it true (one wide OR); the bits below are compared from
    the least significant up: with the comparison of the bits below ``i`` known, where ``k`` has
    a 1 at ``i`` the bit must be set as well; where it has a 0 a set bit decides, else the
    comparison below does. That is ``k.bit_length()`` AND/OR levels beside the OR before LUT
    mapping (one or two LUT4 for the few-bit counters it is used on), and no carry chain.
    (Measured on the PE, whose 16-bit program counter and immediates it checks against table
    sizes: 5,744 LUT4 against 5,799 with the chain over every bit.)

    Parameters
    ----------
    value : Value-castable
        Unsigned operand (its signedness is ignored).
    k : int
        The constant threshold (any integer; ``k <= 0`` is always true, ``k`` above the
        operand's range always false).

    Returns
    -------
    Value
        One bit.
    """
    v = Value.cast(value).as_unsigned()
    if k <= 0:
        return Const(1)
    if k >= 1 << len(v):
        return Const(0)
    w = k.bit_length()
    high = v[w:].any() if w < len(v) else Const(0)
    result = Const(1)  # the comparison of the bits below the current one (none yet: equal)
    for i in range(w):  # least significant first, each step wraps the result so far
        if k >> i & 1:
            result = v[i] & result
        else:
            result = v[i] | result
    return high | result
