"""Python-side wavelets: the same 38-bit layout as :class:`hdl.wavelet.Wavelet`."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Wavelet", "pack", "unpack"]


class Wavelet(NamedTuple):
    """One wavelet: 32-bit ``data``, 5-bit ``color``, 1-bit ``ctrl``."""

    data: int
    color: int
    ctrl: int = 0

    def packed(self) -> int:
        """The 38-bit integer ``data | color << 32 | ctrl << 37``."""
        return pack(self)


def pack(w: Wavelet) -> int:
    """Pack a wavelet into its 38-bit integer form.

    Raises
    ------
    ValueError
        If a field does not fit its width.
    """
    if not 0 <= w.data < 1 << 32:
        raise ValueError(f"wavelet data must be a 32-bit unsigned integer, not {w.data}")
    if not 0 <= w.color < 32:
        raise ValueError(f"wavelet colour must be 0..31, not {w.color}")
    if w.ctrl not in (0, 1):
        raise ValueError(f"wavelet ctrl must be 0 or 1, not {w.ctrl}")
    return w.data | (w.color << 32) | (w.ctrl << 37)


def unpack(bits: int) -> Wavelet:
    """Unpack a 38-bit integer into a :class:`Wavelet`."""
    return Wavelet(bits & 0xFFFF_FFFF, (bits >> 32) & 0x1F, (bits >> 37) & 1)
