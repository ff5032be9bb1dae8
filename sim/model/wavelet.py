"""Python-side wavelets: the same 38-bit layout as :class:`hdl.wavelet.Wavelet`."""

from __future__ import annotations

from typing import NamedTuple

from hdl.wavelet import Wavelet as _WaveletLayout

__all__ = ["Wavelet", "pack", "unpack"]

# The field positions, from the RTL's layout (defined once, in hdl.wavelet).
_LAYOUT = _WaveletLayout.as_shape()
_DATA, _COLOR, _CTRL = (_LAYOUT[name] for name in ("data", "color", "ctrl"))
_DATA_MASK = (1 << _DATA.width) - 1
_COLOR_MASK = (1 << _COLOR.width) - 1
_CTRL_MASK = (1 << _CTRL.width) - 1


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
    if not 0 <= w.data <= _DATA_MASK:
        raise ValueError(f"wavelet data must be a 32-bit unsigned integer, not {w.data}")
    if not 0 <= w.color <= _COLOR_MASK:
        raise ValueError(f"wavelet colour must be 0..31, not {w.color}")
    if w.ctrl not in (0, 1):
        raise ValueError(f"wavelet ctrl must be 0 or 1, not {w.ctrl}")
    return (w.data << _DATA.offset) | (w.color << _COLOR.offset) | (w.ctrl << _CTRL.offset)


def unpack(bits: int) -> Wavelet:
    """Unpack a 38-bit integer into a :class:`Wavelet`."""
    return Wavelet((bits >> _DATA.offset) & _DATA_MASK, (bits >> _COLOR.offset) & _COLOR_MASK,
                   (bits >> _CTRL.offset) & _CTRL_MASK)
