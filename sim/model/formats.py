"""Golden model of the PE's number formats and arithmetic (numpy, vectorised).

Written from IEEE 754 and :mod:`ml_dtypes`, independently of the RTL (:mod:`hdl.formats`,
:mod:`pe.fpu`); the RTL benches compare against it bit for bit.

Conventions
-----------
* Values travel as bit patterns in unsigned numpy arrays: ``uint32`` for binary32 and int32,
  ``uint16`` for bf16/fp16/int16, ``uint8`` for the fp8 formats and int8. Any integer array (or
  Python int, or sequence) is accepted as input and reduced to the element width.
* Arithmetic is binary32, round to nearest even, subnormals in and out, and every NaN result is
  the canonical ``CANONICAL_NAN`` (no payload propagation), as in the RTL. numpy's float32
  arithmetic is IEEE; the module checks, at import and before each arithmetic call, that the
  FPU is not in a flush-to-zero / denormals-are-zero mode (which some libraries compiled with
  ``-ffast-math`` switch on) and raises :class:`FTZError` if it is.
* :func:`fmac` is ``round(round(a * b) + c)``: two roundings, not a fused multiply-add.
* :func:`load_testfloat` reads Berkeley TestFloat vector files (plain, ``.gz`` or ``.xz``).
"""

from __future__ import annotations

import gzip
import lzma
from os import PathLike
from pathlib import Path

import ml_dtypes
import numpy as np

from hdl.formats import Format

__all__ = [
    "CANONICAL_NAN",
    "CANONICAL_NAN_BF16",
    "CANONICAL_NAN_FP16",
    "FTZError",
    "to_bits",
    "from_bits",
    "widen",
    "narrow",
    "fadd",
    "fmul",
    "fmac",
    "fmax",
    "iadd",
    "imax",
    "imul",
    "imac",
    "load_testfloat",
]

#: The canonical binary32 NaN produced by every operation.
CANONICAL_NAN = 0x7FC00000
#: Canonical NaNs of the 16-bit formats (what :func:`narrow` returns for a NaN).
CANONICAL_NAN_BF16 = Format.BF16.layout.canonical_nan  # 0x7FC0
CANONICAL_NAN_FP16 = Format.FP16.layout.canonical_nan  # 0x7E00

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32}
_INT = {8: np.int8, 16: np.int16, 32: np.int32}
_ML_DTYPE = {
    Format.BF16: ml_dtypes.bfloat16,
    Format.FP16: np.float16,
    Format.E4M3: ml_dtypes.float8_e4m3fn,
    Format.E5M2: ml_dtypes.float8_e5m2,
}


class FTZError(RuntimeError):
    """The floating-point unit flushes subnormals to zero, so float32 results would be wrong."""


def _as_bits(bits, width: int) -> np.ndarray:
    """``bits`` as an unsigned array of ``width`` bits (values reduced modulo ``2**width``); a new
    array, never ``bits`` itself."""
    arr = np.asarray(bits)
    if arr.dtype == _UINT[width]:  # already reduced: a copy is all it takes
        return arr.copy()
    if arr.dtype.kind not in "iub":
        raise TypeError(f"expected integer bit patterns, got an array of {arr.dtype}")
    return (arr.astype(np.int64) & ((1 << width) - 1)).astype(_UINT[width])


def to_bits(values) -> np.ndarray:
    """Binary32 bit patterns (``uint32``) of ``values`` (converted to float32 first)."""
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def from_bits(bits) -> np.ndarray:
    """``float32`` values of binary32 bit patterns."""
    return _as_bits(bits, 32).view(np.float32)


def _floats(bits) -> np.ndarray:
    """``float32`` view of binary32 bit patterns, for arithmetic that makes a new array (unlike
    :func:`from_bits`, it does not copy ``uint32`` input)."""
    arr = np.asarray(bits)
    return (arr if arr.dtype == np.uint32 else _as_bits(arr, 32)).view(np.float32)


def _canonical(result: np.ndarray) -> np.ndarray:
    """Binary32 bits of a new float32 array (modified in place) with every NaN replaced by
    ``CANONICAL_NAN``."""
    out = np.asarray(result, dtype=np.float32).view(np.uint32)
    np.putmask(out, np.isnan(result), CANONICAL_NAN)
    return out


def widen(bits, fmt: Format | str) -> np.ndarray:
    """Convert elements of format ``fmt`` to binary32 (floats) or int32 (integers), exactly.

    Parameters
    ----------
    bits : array_like of int
        Element bit patterns (the low ``fmt.bits`` bits of each are used).
    fmt : Format or str
        The element format.

    Returns
    -------
    np.ndarray of uint32, the shape of ``bits``
        FP32: unchanged. BF16/FP16/E4M3/E5M2: the exact binary32 value, every NaN as
        ``CANONICAL_NAN``. INT8/INT16/INT32: the two's-complement value sign-extended to 32 bits.
    """
    fmt = _format(fmt)
    raw = _as_bits(bits, fmt.bits)
    if fmt is Format.FP32:
        return raw
    if fmt.is_int:
        return raw.view(_INT[fmt.bits]).astype(np.int32).view(np.uint32)
    values = raw.view(_ML_DTYPE[fmt]).astype(np.float32)
    return _canonical(values)


def narrow(bits32, fmt: Format | str) -> np.ndarray:
    """Round binary32 values to a narrower format (RNE), as the RTL's ``narrow_from_fp32``.

    Parameters
    ----------
    bits32 : array_like of int
        Binary32 bit patterns (int32 for the integer formats).
    fmt : Format or str
        * FP32, INT32: returned unchanged.
        * BF16, FP16, E4M3, E5M2: rounded with ``ml_dtypes`` / numpy ``astype`` (RNE, gradual
          underflow; overflow to infinity, or to NaN for E4M3, which has no infinity); every
          NaN result is the format's canonical NaN (``0x7FC0``, ``0x7E00``, ``0x7F``,
          ``0x7E``: sign 0, exponent all ones, top fraction bit, all of them for E4M3).
        * INT8, INT16: the low bits (two's-complement wrap, no saturation).

    Returns
    -------
    np.ndarray
        Unsigned bit patterns of ``fmt.bits`` bits (``uint8``, ``uint16`` or ``uint32``).
    """
    fmt = _format(fmt)
    raw = _as_bits(bits32, 32)
    if fmt in (Format.FP32, Format.INT32):
        return raw
    if fmt.is_int:
        return _as_bits(raw, fmt.bits)
    values = raw.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        narrowed = values.astype(_ML_DTYPE[fmt])
    out = narrowed.view(_UINT[fmt.bits]).copy()
    out[np.isnan(narrowed.astype(np.float32))] = fmt.layout.canonical_nan
    return out


def _binary(op, a_bits, b_bits) -> np.ndarray:
    _check_no_flush_to_zero()  # a library loaded after this module may have set FTZ/DAZ
    a = _floats(a_bits)
    b = _floats(b_bits)
    with np.errstate(all="ignore"):
        return _canonical(op(a, b))


def fadd(a_bits, b_bits) -> np.ndarray:
    """Binary32 ``a + b`` (RNE; ``(-0) + (-0) = -0``, other exact zeros ``+0``; canonical NaN).

    Parameters
    ----------
    a_bits, b_bits : array_like of int
        Binary32 bit patterns (broadcast together).

    Returns
    -------
    np.ndarray of uint32
    """
    return _binary(np.add, a_bits, b_bits)


def fmul(a_bits, b_bits) -> np.ndarray:
    """Binary32 ``a * b`` (RNE; ``inf * 0`` is NaN; canonical NaN). Returns ``uint32`` bits."""
    return _binary(np.multiply, a_bits, b_bits)


def fmac(a_bits, b_bits, c_bits) -> np.ndarray:
    """Binary32 ``round(round(a * b) + c)`` — multiply, round, add, round (not fused).

    The same bits as ``fadd(fmul(a, b), c)``: two float32 array operations, each rounded; the
    product's NaN is not made canonical before the add, which changes nothing, since a NaN
    operand makes the sum NaN and the sum's NaN is.

    Returns
    -------
    np.ndarray of uint32
        NaN results are ``CANONICAL_NAN``.
    """
    _check_no_flush_to_zero()
    a, b, c = _floats(a_bits), _floats(b_bits), _floats(c_bits)
    with np.errstate(all="ignore"):
        product = a * b  # rounded to binary32
        return _canonical(product + c)  # rounded again


def fmax(a_bits, b_bits) -> np.ndarray:
    """Binary32 maximum: canonical NaN if either operand is NaN; ``max(-0, +0) = +0``.

    Returns
    -------
    np.ndarray of uint32
    """
    a_bits, b_bits = np.broadcast_arrays(_as_bits(a_bits, 32), _as_bits(b_bits, 32))
    a = a_bits.view(np.float32)
    b = b_bits.view(np.float32)
    out = np.where(a >= b, a_bits, b_bits)
    both_zero = (a == 0) & (b == 0)
    out = np.where(both_zero, a_bits & b_bits, out)  # the sign survives only if both are -0
    return np.where(np.isnan(a) | np.isnan(b), np.uint32(CANONICAL_NAN), out).astype(np.uint32)


def _int_operand(bits, fmt: Format) -> np.ndarray:
    if not fmt.is_int:
        raise ValueError(f"integer arithmetic takes INT8, INT16 or INT32 operands, not {fmt.name}")
    return widen(bits, fmt).view(np.int32).astype(np.int64)


def _wrap32(values: np.ndarray) -> np.ndarray:
    return (values & 0xFFFF_FFFF).astype(np.uint32)


def iadd(a_bits, b_bits, fmt: Format | str = Format.INT32) -> np.ndarray:
    """Two's-complement ``a + b`` wrapped to 32 bits.

    Parameters
    ----------
    a_bits, b_bits : array_like of int
        Operands in format ``fmt`` (sign-extended with :func:`widen` first).
    fmt : Format or str
        INT8, INT16 or INT32 (default).

    Returns
    -------
    np.ndarray of uint32
        The int32 result's bit pattern.
    """
    fmt = _format(fmt)
    return _wrap32(_int_operand(a_bits, fmt) + _int_operand(b_bits, fmt))


def imax(a_bits, b_bits, fmt: Format | str = Format.INT32) -> np.ndarray:
    """Signed ``max(a, b)`` as int32 (ReLU of an int32 accumulation with ``b = 0``); see
    :func:`iadd` for the parameters. Returns ``uint32`` bits."""
    fmt = _format(fmt)
    return _wrap32(np.maximum(_int_operand(a_bits, fmt), _int_operand(b_bits, fmt)))


def imul(a_bits, b_bits, fmt: Format | str = Format.INT32) -> np.ndarray:
    """Two's-complement ``a * b`` wrapped to 32 bits (low word of the product); see
    :func:`iadd` for the parameters. Returns ``uint32`` bits."""
    fmt = _format(fmt)
    product = _int_operand(a_bits, fmt) * _int_operand(b_bits, fmt)  # |product| < 2**62
    return _wrap32(product)


def imac(a_bits, b_bits, c_bits, fmt: Format | str = Format.INT32) -> np.ndarray:
    """Integer multiply-accumulate ``c + a * b`` wrapped to 32 bits.

    Parameters
    ----------
    a_bits, b_bits : array_like of int
        Multiplicands in format ``fmt`` (INT8, INT16 or INT32), sign-extended first.
    c_bits : array_like of int
        The int32 accumulator.
    fmt : Format or str
        Format of ``a`` and ``b``.

    Returns
    -------
    np.ndarray of uint32
    """
    fmt = _format(fmt)
    return iadd(imul(a_bits, b_bits, fmt), c_bits)


_FORMATS = {int(f): f for f in Format}


def _format(fmt: Format | str) -> Format:
    if isinstance(fmt, str):
        return Format.from_name(fmt)
    found = _FORMATS.get(fmt)
    return found if found is not None else Format(fmt)  # Format() raises for a bad code


def load_testfloat(path: str | PathLike) -> np.ndarray:
    """Read a Berkeley TestFloat vector file (plain text, ``.gz`` or ``.xz``).

    Parameters
    ----------
    path : path-like
        File of lines ``operand... result flags`` in hex.

    Returns
    -------
    np.ndarray of uint32, shape (lines, columns)
        One row per vector: the operands, the expected result, then the exception flags.
    """
    path = Path(path)
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rt") as fh:
        rows = [line.split() for line in fh if line.strip()]
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError(f"{path}: lines have different numbers of columns")
    return np.array([[int(x, 16) for x in r] for r in rows], dtype=np.uint32)


# tiny * 1e-3 is a subnormal result (flushed to zero under FTZ); the smallest subnormal
# operand reads as zero under DAZ, so its product with 1 is zero.
_FTZ_A = np.array([1.0e-38, 0.0], dtype=np.float32)
_FTZ_A.view(np.uint32)[1] = 1
_FTZ_B = np.array([1.0e-3, 1.0], dtype=np.float32)


def _check_no_flush_to_zero() -> None:
    product = _FTZ_A * _FTZ_B
    if product[0] == 0 or product[1] == 0:
        raise FTZError(
            "numpy float32 arithmetic flushes subnormals to zero (FTZ/DAZ is set, e.g. by a "
            "library compiled with -ffast-math); the golden model would be wrong"
        )


_check_no_flush_to_zero()
