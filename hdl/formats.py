"""Number formats of the processing element, and the Amaranth logic that converts between them.

Formats
-------
:class:`Format` names the element formats a PE operand may have (a 3-bit code, the same in the
RTL, the assembler and the golden model :mod:`sim.formats`). The floating-point formats are
described by a :class:`FloatLayout` (exponent and fraction widths, bias, whether the format has
infinities). The enum and the layouts are plain Python; numpy code may use them freely.

Combinational building blocks
-----------------------------
Every function below takes the :class:`~amaranth.hdl.Module` it adds logic to and Amaranth
values, and returns an Amaranth value; call them from any component's ``elaborate``. Widths are
in bits. All floating-point arithmetic is round-to-nearest, ties-to-even (RNE), with subnormals
in and out (never flushed to zero) and the canonical NaN of each format (sign 0, exponent all
ones, the top fraction bit set: ``0x7FC00000`` for binary32).

* :func:`unpack` splits a float into sign, exponent, significand and class flags.
* :func:`leading_zeros` and :func:`normalize` shift a significand left to put its integer bit
  on top (leading-zero count as a log-depth tree).
* :func:`round_pack` is the single, parameterised round-and-pack step: sign, exponent and a wide
  significand with a sticky bit go in, a packed float of any (``exp_bits``, ``man_bits``) comes
  out, with RNE, gradual underflow and overflow to infinity. The format converters here and the
  binary32 units of :mod:`pe.fpu` are all built on it. Its first step, :func:`denormalize`
  (the right shift of a result below the normal range), is public so that a pipeline can put a
  register between it and the rounding.
* :func:`widen_to_fp32` / :func:`widen_dynamic` turn an element of any format into the exact
  binary32 pattern (or int32 for the integer formats).
* :func:`narrow_from_fp32` / :func:`narrow_dynamic` round a binary32 value to bf16 or fp16
  (the formats the PE stores), or to fp8.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned

__all__ = [
    "Format",
    "FloatLayout",
    "FLOAT_LAYOUTS",
    "CANONICAL_NAN_FP32",
    "Unpacked",
    "unpack",
    "leading_zeros",
    "trailing_zeros",
    "shift_right_sticky",
    "normalize",
    "round_pack",
    "denormalize",
    "canonical_nan",
    "widen_to_fp32",
    "widen_dynamic",
    "narrow_from_fp32",
    "narrow_dynamic",
]

#: The one NaN every binary32 operation produces (quiet, sign 0, no payload).
CANONICAL_NAN_FP32 = 0x7FC00000


class Format(enum.IntEnum):
    """Element format of a PE operand; the value is the 3-bit code used in hardware.

    ``E4M3`` is the OCP 8-bit "FN" format (``ml_dtypes.float8_e4m3fn``): bias 7, no
    infinities, NaN is only ``S.1111.111``, largest finite value 448. ``E5M2`` is
    ``ml_dtypes.float8_e5m2``, IEEE-like with infinities and NaNs. The integer formats are two's
    complement.
    """

    FP32 = 0
    BF16 = 1
    FP16 = 2
    E4M3 = 3
    E5M2 = 4
    INT8 = 5
    INT16 = 6
    INT32 = 7

    @property
    def bits(self) -> int:
        """Width of one element in bits (32, 16, 16, 8, 8, 8, 16, 32)."""
        return _ELEMENT_BITS[self]

    @property
    def is_float(self) -> bool:
        """True for the floating-point formats (FP32, BF16, FP16, E4M3, E5M2)."""
        return self in FLOAT_LAYOUTS

    @property
    def is_int(self) -> bool:
        """True for the two's-complement integer formats (INT8, INT16, INT32)."""
        return not self.is_float

    @property
    def layout(self) -> FloatLayout:
        """The :class:`FloatLayout` of a floating-point format.

        Raises
        ------
        ValueError
            If the format is an integer format.
        """
        try:
            return FLOAT_LAYOUTS[self]
        except KeyError:
            raise ValueError(f"{self.name} is an integer format and has no float layout") from None

    @classmethod
    def from_name(cls, name: str) -> Format:
        """The format called ``name`` (case-insensitive).

        Parameters
        ----------
        name : str
            One of ``fp32``, ``bf16``, ``fp16``, ``e4m3`` (or ``fp8_e4m3``), ``e5m2`` (or
            ``fp8_e5m2``), ``int8``, ``int16``, ``int32``.

        Raises
        ------
        ValueError
            If ``name`` is not a known format name; the message lists the valid names.
        """
        if isinstance(name, str):
            fmt = _NAMES.get(name.strip().lower())
            if fmt is not None:
                return fmt
        raise ValueError(
            f"unknown number format {name!r}; valid names are {', '.join(_NAMES)}"
        )


@dataclass(frozen=True)
class FloatLayout:
    """Bit layout of a binary floating-point format: ``sign | exponent | fraction``.

    Parameters
    ----------
    exp_bits : int
        Width of the biased exponent field.
    man_bits : int
        Width of the fraction field (the significand without its implicit integer bit).
    has_inf : bool
        True for IEEE-like formats (exponent all ones is infinity or NaN). False for the OCP "FN"
        formats: exponent all ones holds normal numbers, and only an all-ones fraction is NaN.
    """

    exp_bits: int
    man_bits: int
    has_inf: bool = True

    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(exp_bits - 1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def width(self) -> int:
        """Total width in bits, ``1 + exp_bits + man_bits``."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def exp_max(self) -> int:
        """The all-ones exponent field value, ``2**exp_bits - 1``."""
        return (1 << self.exp_bits) - 1

    @property
    def canonical_nan(self) -> int:
        """The canonical NaN bit pattern: sign 0, exponent all ones, top fraction bit set (all
        fraction bits set for a format without infinities)."""
        frac = (1 << self.man_bits) - 1 if not self.has_inf else 1 << (self.man_bits - 1)
        return self.exp_max << self.man_bits | frac


#: Layout of each floating-point :class:`Format`.
FLOAT_LAYOUTS: dict[Format, FloatLayout] = {
    Format.FP32: FloatLayout(8, 23),
    Format.BF16: FloatLayout(8, 7),
    Format.FP16: FloatLayout(5, 10),
    Format.E4M3: FloatLayout(4, 3, has_inf=False),
    Format.E5M2: FloatLayout(5, 2),
}
_ELEMENT_BITS = {Format.INT8: 8, Format.INT16: 16, Format.INT32: 32} | {
    f: lay.width for f, lay in FLOAT_LAYOUTS.items()
}
_NAMES: dict[str, Format] = {
    "fp32": Format.FP32,
    "bf16": Format.BF16,
    "fp16": Format.FP16,
    "e4m3": Format.E4M3,
    "fp8_e4m3": Format.E4M3,
    "e5m2": Format.E5M2,
    "fp8_e5m2": Format.E5M2,
    "int8": Format.INT8,
    "int16": Format.INT16,
    "int32": Format.INT32,
}
_FP32 = FLOAT_LAYOUTS[Format.FP32]


def _layout(fmt: Format | FloatLayout) -> FloatLayout:
    if isinstance(fmt, FloatLayout):
        return fmt
    return Format(fmt).layout


def _comb(m: Module, value: Value, shape, name: str) -> Signal:
    """A named combinational signal driven by ``value`` (keeps waveforms readable)."""
    sig = Signal(shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


# --------------------------------------------------------------------------------------------
# Unpack, normalise, round and pack
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unpacked:
    """A float split into fields (all Amaranth values).

    Attributes
    ----------
    sign : Value, 1 bit
    exp : Value, unsigned ``exp_bits``
        Biased exponent with subnormals and zero given exponent 1 (so that
        ``value = man * 2**(exp - bias - man_bits)`` for every finite value).
    man : Value, unsigned ``man_bits + 1``
        Significand: the fraction with its integer bit on top (0 for subnormals and zero).
    is_zero, is_inf, is_nan : Value, 1 bit
        Class flags. ``is_inf`` is constant 0 for a format without infinities.
    """

    sign: Value
    exp: Value
    man: Value
    is_zero: Value
    is_inf: Value
    is_nan: Value


def unpack(m: Module, bits: Value, fmt: Format | FloatLayout) -> Unpacked:
    """Split the float in the low bits of ``bits`` into fields.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    bits : Value
        At least ``layout.width`` bits; the element is in the low bits, the rest is ignored.
    fmt : Format or FloatLayout
        A floating-point format (a Python constant).

    Returns
    -------
    Unpacked
        Sign, exponent (subnormal = 1), significand and class flags.

    Raises
    ------
    ValueError
        If ``fmt`` is an integer format.
    """
    lay = _layout(fmt)
    bits = Value.cast(bits)
    frac = bits[: lay.man_bits]
    efield = bits[lay.man_bits : lay.man_bits + lay.exp_bits]
    sign = bits[lay.width - 1]
    normal = efield.any()
    exp_all_ones = efield.all()
    if lay.has_inf:
        is_nan = exp_all_ones & frac.any()
        is_inf = exp_all_ones & ~frac.any()
    else:
        is_nan = exp_all_ones & frac.all()
        is_inf = Const(0, 1)
    return Unpacked(
        sign=sign,
        exp=Mux(normal, efield, 1),
        man=Cat(frac, normal),
        is_zero=~efield.any() & ~frac.any(),
        is_inf=is_inf,
        is_nan=is_nan,
    )


def leading_zeros(value: Value) -> Value:
    """Number of leading (most significant) zero bits of ``value``, as a log-depth tree.

    Parameters
    ----------
    value : Value
        Unsigned, ``W >= 1`` bits.

    Returns
    -------
    Value
        Unsigned count from 0 to ``W`` (``W`` when ``value`` is zero), ``W.bit_length()`` bits.
    """
    value = Value.cast(value).as_unsigned()
    width = len(value)
    size = 1 << max(width - 1, 0).bit_length()
    # Pad below with ones so the padded bits are never counted.
    padded = Cat(Const((1 << (size - width)) - 1, size - width), value) if size > width else value

    def tree(v: Value) -> tuple[Value, Value]:
        # Returns (all_zero, count of leading zeros modulo len(v)).
        if len(v) == 1:
            return ~v[0], Const(0, 0)
        half = len(v) // 2
        zero_hi, count_hi = tree(v[half:])
        zero_lo, count_lo = tree(v[:half])
        return zero_hi & zero_lo, Mux(zero_hi, Cat(count_lo, 1), Cat(count_hi, 0))

    all_zero, count = tree(padded)
    if size > width:  # the padding guarantees a one: never all zero
        return count
    return Mux(all_zero, width, count)


def trailing_zeros(value: Value) -> Value:
    """:func:`leading_zeros` counted from the least significant end of ``value`` (``W``
    bits; the count is ``W`` when it is zero)."""
    value = Value.cast(value).as_unsigned()
    return leading_zeros(Cat(*reversed([value[i] for i in range(len(value))])))


def shift_right_sticky(m: Module, value: Value, amount: Value, *,
                       name: str = "srs") -> tuple[Value, Value]:
    """Shift right and say whether any set bit was shifted out.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    value : Value
        Unsigned, ``W`` bits.
    amount : Value
        Unsigned shift amount (any amount up to ``2 ** len(amount) - 1``).

    Returns
    -------
    shifted : Value, ``W`` bits
        ``value >> amount``.
    lost : Value, 1 bit
        The OR of the bits of ``value`` below position ``amount``.
    """
    value = Value.cast(value).as_unsigned()
    width = len(value)
    ones = Const((1 << width) - 1, width)
    shifted = _comb(m, value >> amount, unsigned(width), f"{name}_shifted")
    lost = _comb(m, (value & ~(ones << amount)[:width]).any(), 1, f"{name}_lost")
    return shifted, lost


def normalize(
    m: Module, exp: Value, man: Value, *, min_exp: int | None = None, name: str = "norm"
) -> tuple[Value, Value]:
    """Shift a significand left until its integer bit is on top, adjusting the exponent.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    exp : Value
        Exponent (signed or unsigned), in units of the target format's biased exponent.
    man : Value
        Unsigned significand, ``W`` bits; its top bit is the integer-bit position.
    min_exp : int, optional
        Do not shift below this exponent: the shift is ``min(leading zeros, exp - min_exp)``
        (0 if ``exp < min_exp``), which leaves a subnormal significand aligned to exponent
        ``min_exp``. ``None`` shifts by the full leading-zero count (the exponent may go below
        1; a zero significand stays zero).
    name : str
        Prefix of the signals created.

    Returns
    -------
    exp : Value
        Adjusted exponent, signed, two bits wider than ``exp`` (and wide enough for
        ``exp - W``).
    man : Value
        Shifted significand, ``W`` bits.
    """
    exp = Value.cast(exp)
    man = Value.cast(man)
    width = len(man)
    exp_width = max(len(exp), width.bit_length()) + 2
    lz = _comb(m, leading_zeros(man), unsigned(width.bit_length()), f"{name}_lz")
    if min_exp is None:
        shift = lz
    else:
        room = _comb(m, exp - min_exp, signed(exp_width), f"{name}_room")
        shift = Mux(room < 0, 0, Mux(room < lz, room[: len(lz)], lz))
    shift = _comb(m, shift, unsigned(len(lz)), f"{name}_shift")
    out_man = _comb(m, (man << shift)[:width], unsigned(width), f"{name}_man")
    out_exp = _comb(m, exp - shift, signed(exp_width), f"{name}_exp")
    return out_exp, out_man


def round_pack(
    m: Module,
    sign: Value,
    exp: Value,
    man: Value,
    *,
    exp_bits: int,
    man_bits: int,
    has_inf: bool = True,
    may_underflow: bool = True,
    name: str = "rnd",
) -> Value:
    """Round a significand to ``man_bits`` fraction bits (RNE) and pack an IEEE-style float.

    The value represented is ``(-1)**sign * man * 2**(exp - bias - (W - 1))`` with
    ``bias = 2**(exp_bits - 1) - 1`` and ``W = len(man)``: ``exp`` is the target's biased
    exponent of a significand whose integer bit is the top bit of ``man``.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    sign : Value, 1 bit
        Sign of the result (also of a zero result).
    exp : Value
        Signed (or unsigned) biased exponent in the target format; may be below 1 (the result
        is then denormalised with correct rounding, or rounds to zero) or above the largest
        exponent (overflow to infinity).
    man : Value
        Unsigned significand, ``W`` bits. Either its top bit is set, or ``exp <= 1``, or it is
        zero (result: signed zero). The bits below the guard bit only matter through their OR,
        so a caller may fold discarded low-order bits into bit 0 as a sticky bit. Any ``W`` is
        accepted; fewer than ``man_bits + 3`` bits are padded with zeros (exact conversion).
    exp_bits, man_bits : int
        Target exponent and fraction widths, e.g. 8 and 23 for binary32, 5 and 10 for binary16.
    has_inf : bool
        True for an IEEE-like target (overflow gives infinity). False for an OCP "FN" target
        such as fp8 E4M3, whose all-ones exponent holds normal numbers: a result that rounds
        beyond the largest finite value gives the canonical NaN (as ``ml_dtypes`` converts).
    may_underflow : bool
        False when the caller guarantees ``exp >= 1`` (after :func:`normalize` with
        ``min_exp=1``, or after :func:`denormalize` in an earlier pipeline stage): the
        denormalising right shifter is then left out.
    name : str
        Prefix of the signals created.

    Returns
    -------
    Value
        ``1 + exp_bits + man_bits`` bits: the packed, rounded result. Overflow gives infinity of
        ``sign`` (or the canonical NaN without ``has_inf``). Tininess is detected after
        rounding, which does not change the result bits.
    """
    sign = Value.cast(sign)
    man = Value.cast(man).as_unsigned()
    min_width = man_bits + 3  # integer bit, fraction, guard, sticky
    if len(man) < min_width:
        man = Cat(Const(0, min_width - len(man)), man)
    width = len(man)
    if may_underflow:
        exp, man = denormalize(m, exp, man, name=name)
    exp = Value.cast(exp)
    exp_width = max(len(exp), exp_bits + 1) + 1

    guard_pos = width - 2 - man_bits
    kept = man[guard_pos + 1 :]  # integer bit and fraction, man_bits + 1 bits
    guard = man[guard_pos]
    sticky = man[:guard_pos].any()
    round_up = _comb(m, guard & (sticky | kept[0]), 1, f"{name}_up")

    # (exp - 1) << man_bits plus the significand with its integer bit: a normal significand
    # adds the missing 1 to the exponent, a subnormal one (integer bit 0, exp field 0) does not,
    # and a carry out of the fraction on rounding increments the exponent — all in one adder.
    exp_field = _comb(m, exp - 1, signed(exp_width), f"{name}_efield").as_unsigned()
    total_bits = exp_width + man_bits + 1
    total = _comb(
        m, (exp_field << man_bits) + kept + round_up, unsigned(total_bits), f"{name}_total"
    )
    exp_max = (1 << exp_bits) - 1
    if has_inf:
        overflow = total[man_bits:] >= exp_max
        huge = Cat(Const(0, man_bits), Const(exp_max, exp_bits), sign)  # infinity
    else:
        nan_code = exp_max << man_bits | ((1 << man_bits) - 1)
        overflow = total >= nan_code
        huge = Const(nan_code, 1 + exp_bits + man_bits)  # canonical NaN, sign 0
    zero = Cat(Const(0, exp_bits + man_bits), sign)
    finite = Cat(total[: exp_bits + man_bits], sign)
    packed = Mux(~man.any(), zero, Mux(overflow, huge, finite))
    return _comb(m, packed, unsigned(1 + exp_bits + man_bits), f"{name}_packed")


def denormalize(m: Module, exp: Value, man: Value, *, name: str = "denorm") -> tuple[Value, Value]:
    """Align a significand below the normal range to exponent 1: the first step of
    :func:`round_pack`, available on its own so that a pipeline can register between the two.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    exp : Value
        Signed (or unsigned) biased exponent, in :func:`round_pack`'s convention.
    man : Value
        Unsigned significand, ``W`` bits, at least the target's ``man_bits + 3`` (so that bit 0
        is below the guard bit).

    Returns
    -------
    exp : Value
        ``max(exp, 1)``, signed.
    man : Value, ``W`` bits
        ``man`` shifted right by ``1 - exp`` when ``exp < 1`` (by at most ``W``), with the bits
        shifted out ORed into bit 0 as a sticky bit; unchanged when ``exp >= 1``.
    """
    exp = Value.cast(exp)
    man = Value.cast(man).as_unsigned()
    width = len(man)
    exp_width = max(len(exp), width.bit_length() + 1) + 1
    exp = _comb(m, exp, signed(exp_width), f"{name}_exp")
    tiny = exp < 1
    shift_bits = width.bit_length()
    deficit = _comb(m, 1 - exp, signed(exp_width + 1), f"{name}_deficit")
    rshift = Mux(tiny, Mux(deficit > width, width, deficit[:shift_bits]), 0)
    rshift = _comb(m, rshift, unsigned(shift_bits), f"{name}_rshift")
    shifted = man >> rshift
    lost = (man & ~(Const((1 << width) - 1, width) << rshift)[:width]).any()
    out_man = _comb(m, Cat(shifted[0] | lost, shifted[1:]), unsigned(width), f"{name}_man")
    out_exp = _comb(m, Mux(tiny, 1, exp), signed(exp_width), f"{name}_exp1")
    return out_exp, out_man


def canonical_nan(fmt: Format | FloatLayout) -> Const:
    """The canonical NaN of a floating-point format as a constant of its width."""
    lay = _layout(fmt)
    return Const(lay.canonical_nan, lay.width)


# --------------------------------------------------------------------------------------------
# Format conversion
# --------------------------------------------------------------------------------------------


def widen_to_fp32(m: Module, bits: Value, fmt: Format) -> Value:
    """Convert one element of format ``fmt`` to binary32 (floats) or int32 (integers), exactly.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    bits : Value
        The element in the low ``fmt.bits`` bits; higher bits are ignored.
    fmt : Format
        The element format, a Python constant.

    Returns
    -------
    Value, 32 bits
        * FP32: ``bits`` unchanged (no NaN canonicalisation).
        * BF16, FP16, E4M3, E5M2: the exact binary32 pattern of the value (subnormals of the
          narrow format become normal binary32 numbers, ±0 and ±inf keep their sign); every NaN
          becomes ``0x7FC00000``.
        * INT8, INT16, INT32: the value sign-extended to a 32-bit two's-complement integer.
    """
    fmt = Format(fmt)
    bits = Value.cast(bits)
    tag = f"widen_{fmt.name.lower()}"
    if fmt is Format.FP32:
        return bits[:32]
    if fmt.is_int:
        return _comb(m, bits[: fmt.bits].as_signed(), unsigned(32), tag)
    lay = fmt.layout
    src = unpack(m, bits, lay)
    # Rebias to binary32, then normalise (a narrow subnormal is a binary32 normal, except for
    # bf16, whose subnormals stay subnormal: min_exp=1 keeps those aligned).
    exp = src.exp + (_FP32.bias - lay.bias)
    nexp, nman = normalize(m, exp, src.man, min_exp=1, name=tag)
    packed = round_pack(m, src.sign, nexp, nman, exp_bits=_FP32.exp_bits,
                        man_bits=_FP32.man_bits, may_underflow=False, name=tag)
    inf = Cat(Const(0, _FP32.man_bits), Const(_FP32.exp_max, _FP32.exp_bits), src.sign)
    return _comb(
        m,
        Mux(src.is_nan, CANONICAL_NAN_FP32, Mux(src.is_inf, inf, packed)),
        unsigned(32),
        f"{tag}_out",
    )


def widen_dynamic(m: Module, bits32: Value, fmt: Value) -> Value:
    """:func:`widen_to_fp32` with the format chosen at run time.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    bits32 : Value, 32 bits
        The element in its low ``fmt.bits`` bits.
    fmt : Value, 3 bits
        A :class:`Format` code; all eight codes are valid.

    Returns
    -------
    Value, 32 bits
        Binary32 bits (float formats) or int32 (integer formats).
    """
    out = Signal(32, name="widened")
    options = {f: widen_to_fp32(m, bits32, f) for f in Format}
    with m.Switch(fmt):
        for f, value in options.items():
            with m.Case(f.value):
                m.d.comb += out.eq(value)
    return out


def narrow_from_fp32(m: Module, bits32: Value, fmt: Format) -> Value:
    """Round a binary32 value to a float format of at most 32 bits (RNE).

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    bits32 : Value, 32 bits
        Binary32 bit pattern.
    fmt : Format
        A floating-point format, a Python constant: ``FP32`` (identity), ``BF16`` or ``FP16``
        (the formats the PE stores), or ``E4M3`` / ``E5M2``.

    Returns
    -------
    Value, ``fmt.bits`` bits
        The rounded value: RNE; values below the normal range give a correctly rounded
        subnormal or zero; overflow (and infinity) gives infinity, except in E4M3, which has
        none and gives its NaN ``0x7F`` (as ``ml_dtypes``); every NaN gives the target's
        canonical NaN (``0x7FC0`` bf16, ``0x7E00`` fp16, ``0x7E`` e5m2, ``0x7F`` e4m3). FP32
        returns ``bits32`` unchanged.

    Raises
    ------
    ValueError
        If ``fmt`` is an integer format.
    """
    fmt = Format(fmt)
    if not fmt.is_float:
        raise ValueError(f"narrow_from_fp32 rounds to a float format, not {fmt.name}")
    bits32 = Value.cast(bits32)
    if fmt is Format.FP32:
        return bits32[:32]
    lay = fmt.layout
    tag = f"narrow_{fmt.name.lower()}"
    src = unpack(m, bits32, _FP32)
    exp = src.exp + (lay.bias - _FP32.bias)  # signed when the bias shrinks
    packed = round_pack(m, src.sign, exp, src.man, exp_bits=lay.exp_bits,
                        man_bits=lay.man_bits, has_inf=lay.has_inf, name=tag)
    return _comb(m, Mux(src.is_nan, canonical_nan(lay), packed), unsigned(lay.width),
                 f"{tag}_out")


def narrow_dynamic(
    m: Module,
    bits32: Value,
    fmt: Value,
    *,
    formats: tuple[Format, ...] = (Format.BF16, Format.FP16),
) -> Value:
    """:func:`narrow_from_fp32` with the format chosen at run time.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    bits32 : Value, 32 bits
        Binary32 bits (or an int32 for the integer formats).
    fmt : Value, 3 bits
        A :class:`Format` code.
    formats : tuple of Format
        The float formats to build a rounder for (default BF16 and FP16, what the PE stores;
        add E4M3/E5M2 for fp8 results).

    Returns
    -------
    Value, 32 bits
        For a format in ``formats``: the rounded value in the low ``fmt.bits`` bits, upper bits
        zero. Every other code (FP32, the integer formats, and float formats left out of
        ``formats``) returns ``bits32`` unchanged; for INT8/INT16 its low bits are then the
        two's-complement wrap.

    Raises
    ------
    ValueError
        If ``formats`` holds an integer format.
    """
    bits32 = Value.cast(bits32)
    out = Signal(32, name="narrowed")
    rounded = {Format(f): narrow_from_fp32(m, bits32, f) for f in formats}
    m.d.comb += out.eq(bits32[:32])
    with m.Switch(fmt):
        for f, value in rounded.items():
            if f is not Format.FP32:
                with m.Case(f.value):
                    m.d.comb += out.eq(value)
    return out
