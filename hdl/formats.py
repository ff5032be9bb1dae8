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


def _stage(m: Module, domain: str | None, values: dict[str, Value], name: str) -> dict:
    """Register ``values`` in ``domain`` (a pipeline stage), or pass them through (``None``)."""
    if domain is None:
        return values
    out = {}
    for key, value in values.items():
        value = Value.cast(value)
        reg = Signal(value.shape(), name=f"{name}_{key}")
        m.d[domain] += reg.eq(value)
        out[key] = reg
    return out


#: Formats whose elements widen through the shared small-float path (exponent field, at most
#: 10 fraction bits, subnormals normalised): their fields as (exponent bits, fraction bits).
_SMALL = {Format.FP16: (5, 10), Format.E5M2: (5, 2), Format.E4M3: (4, 3)}


def widen_dynamic(m: Module, bits32: Value, fmt: Value, *,
                  formats: tuple[Format, ...] = tuple(Format), domain: str | None = None,
                  name: str = "widen") -> Value:
    """Convert an element of any format, chosen at run time, to binary32 or int32, exactly.

    One datapath serves every format: FP32 and INT32 pass through, INT8/INT16 sign-extend,
    BF16 shifts (and canonicalises NaN), and FP16, E5M2 and E4M3 share one small-float path:
    their exponent and fraction fields (the fraction aligned to 10 bits), the leading-zero
    count of a subnormal's fraction and its normalising shift, and the rebiased exponent. No
    rounding is needed: every value of these formats is a binary32 value.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    bits32 : Value, 32 bits
        The element in its low ``fmt.bits`` bits; the bits above it are ignored.
    fmt : Value, 3 bits
        A :class:`Format` code.
    formats : tuple of Format
        The formats that can occur (default all); logic for the others is left out and their
        codes give an unspecified value.
    domain : str, optional
        Put a pipeline register (in this clock domain) between the field extraction and
        leading-zero count and the normalising shift: the result then comes one cycle later.
    name : str
        Prefix of the signals created.

    Returns
    -------
    Value, 32 bits
        * FP32, INT32: ``bits32`` unchanged (no NaN canonicalisation);
        * BF16, FP16, E4M3, E5M2: the exact binary32 pattern of the value (a narrow subnormal
          becomes a binary32 normal, except bf16's, which stay subnormal; ±0 and ±inf keep
          their sign); every NaN becomes ``0x7FC00000``;
        * INT8, INT16: the value sign-extended to a 32-bit two's-complement integer.
    """
    bits = Value.cast(bits32)[:32]
    formats = tuple(Format(f) for f in formats)
    small = [f for f in formats if f in _SMALL]

    def is_(f):
        return Const(0, 1) if f not in formats else (fmt == f)

    # ---- stage 1: fields, classes, and the leading zeros of a subnormal's fraction --------
    # The result is assembled in stage 2 as an OR of per-class terms, so stage 1 decides
    # each class (one-hot) and the bits every class takes.
    pass32 = is_(Format.FP32) | is_(Format.INT32)
    i8, i16, bf = is_(Format.INT8), is_(Format.INT16), is_(Format.BF16)
    bf_nan = bf & bits[7:15].all() & bits[:7].any()
    st1 = {
        "bits": bits,
        "lo8": pass32 | i16 | i8,          # bits [7:0] pass through
        "mid": pass32 | i16,               # bits [15:8]
        "pass": pass32,                    # bits [31:16]
        "bf": bf & ~bf_nan,                # bits [31:16] = the bf16 element
        "ext8": i8 & bits[7],              # sign extension from bit 7 ...
        "ext": (i8 & bits[7]) | (i16 & bits[15]),  # ... or 15, above the element
        "nan": bf_nan,
    }
    if small:
        h, e5, e4 = is_(Format.FP16), is_(Format.E5M2), is_(Format.E4M3)
        # The element's exponent field (5 bits, E4M3's 4 zero-extended) and its fraction
        # aligned to the top of 10 bits; E4M3's bias is 7, the others' 15.
        efield = Mux(h, bits[10:15], Mux(e5, bits[2:7], Cat(bits[3:7], Const(0, 1))))
        frac = Mux(h, bits[:10], Mux(e5, Cat(Const(0, 8), bits[:2]), Cat(Const(0, 7), bits[:3])))
        efield = _comb(m, efield, unsigned(5), f"{name}_efield")
        frac = _comb(m, frac, unsigned(10), f"{name}_frac")
        is_small = h | e5 | e4
        top = Mux(e4, efield[:4].all(), efield.all())  # the all-ones exponent
        # E4M3 (OCP "FN") has no infinities; its only NaN is S.1111.111.
        nan = is_small & Mux(e4, top & bits[:3].all(), top & frac.any())
        inf = is_small & ~e4 & top & ~frac.any()
        sub = ~efield.any()
        zero = sub & ~frac.any()
        st1.update(
            e4=e4,
            sub=sub,
            efield=efield,
            frac=frac,
            lz=leading_zeros(frac),
            nan=bf_nan | nan,
            inf=inf,
            sf=is_small & ~nan & ~inf & ~zero,  # finite, nonzero: normal or subnormal
            sign=is_small & ~nan & Mux(h, bits[15], bits[7]),
        )
    st = _stage(m, domain, st1, f"{name}_s1")

    # ---- stage 2: normalise a subnormal, rebias, and assemble --------------------------------
    b = st["bits"]
    lo = Cat(b[i] & st["lo8"] for i in range(8))
    mid = Cat((b[i] & st["mid"]) | st["ext8"] for i in range(8, 16))
    high = Cat((b[i] & st["pass"]) | (b[i - 16] & st["bf"]) | st["ext"] for i in range(16, 32))
    out = Signal(32, name=f"{name}_out")
    value = Cat(lo, mid, high) | Mux(st["nan"], CANONICAL_NAN_FP32, 0)
    if small:
        # A subnormal 0.f x 2**(1 - bias) is 1.g x 2**(-lz - bias) with g = f << (lz + 1);
        # binary32 exponent 127 - bias - lz. A normal one: efield + 127 - bias.
        offset = Mux(st["e4"], 127 - 7, 127 - 15)
        # f << (lz + 1), truncated to 10 bits, drops the leading one
        shifted = _comb(m, Cat(Const(0, 1), (st["frac"] << st["lz"])[:9]), unsigned(10),
                        f"{name}_norm")
        exp = _comb(m, Mux(st["sub"], offset - st["lz"], offset + st["efield"]), unsigned(8),
                    f"{name}_exp")
        frac = Mux(st["sub"], shifted, st["frac"])
        sf = st["sf"]
        value |= Cat(Const(0, 13), Cat(f & sf for f in frac),
                     Cat(e & sf | st["inf"] for e in exp), st["sign"])
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
    domain: str | None = None,
    name: str = "narrow",
) -> Value:
    """Round binary32 to the format chosen at run time (RNE): the PE's write-back converter.

    BF16 keeps binary32's exponent, so rounding is an increment of the top 16 bits. FP16 has a
    dedicated rounder: the rebiased exponent, a right shift of the significand for a result
    below fp16's normal range (with the shifted-out bits folded into a sticky bit), and one
    increment that also carries into the exponent (to the smallest normal, or to infinity).
    E4M3 and E5M2, if asked for, use the generic :func:`narrow_from_fp32`.

    Parameters
    ----------
    m : Module
        Module the logic is added to.
    bits32 : Value, 32 bits
        Binary32 bits (or an int32 for the integer formats).
    fmt : Value, 3 bits
        A :class:`Format` code.
    formats : tuple of Format
        The float formats to build a rounder for (default BF16 and FP16, what the PE stores).
    domain : str, optional
        Put a pipeline register (in this clock domain) after the exponent compares and the
        FP16 alignment shift, before the rounding increments: the result comes one cycle later.
    name : str
        Prefix of the signals created.

    Returns
    -------
    Value, 32 bits
        For a format in ``formats``: the rounded value in the low ``fmt.bits`` bits, upper bits
        zero; overflow (and infinity) gives infinity (E4M3: its NaN ``0x7F``); every NaN gives
        the target's canonical NaN. Every other code (FP32, the integer formats, and float
        formats left out of ``formats``) returns ``bits32`` unchanged; for INT8/INT16 its low
        bits are then the two's-complement wrap.

    Raises
    ------
    ValueError
        If ``formats`` holds an integer format.
    """
    bits = Value.cast(bits32)[:32]
    formats = tuple(Format(f) for f in formats)
    for f in formats:
        if not f.is_float:
            raise ValueError(f"narrow_dynamic rounds to float formats, not {f.name}")
    exp, frac = bits[23:31], bits[:23]
    nan = exp.all() & frac.any()

    # ---- stage 1: exponent compares, FP16 alignment -----------------------------------------
    st1 = {"bits": bits, "fmt": fmt, "nan": nan}
    if Format.BF16 in formats:
        st1["bf16_up"] = bits[15] & (bits[:15].any() | bits[16])
    if Format.FP16 in formats:
        # fp16 exponent field E = exp - 112. Normal (E >= 1): keep 10 fraction bits. Below
        # (E <= 0): the significand 1.f shifted right by k = 1 - E more (k > 12 leaves only
        # sticky bits). t = significand >> 12: integer bit, 10 fraction bits, guard.
        normal = exp >= 113
        k = _comb(m, 113 - exp, unsigned(8), f"{name}_h_k")
        amount = Mux(normal, 0, Mux(k[4:].any(), 15, k[:4]))
        t = Cat(frac[12:], exp.any())
        t_shifted, lost = shift_right_sticky(m, t, amount, name=f"{name}_h_align")
        st1.update(
            h_t=t_shifted,
            h_sticky=frac[:12].any() | lost,
            h_exp=Mux(normal, (exp[:5] + 16)[:5], 0),  # E = exp - 112, modulo 32
            h_ovf=exp >= 143,  # E >= 31 (also infinity and NaN)
        )
    st = _stage(m, domain, st1, f"{name}_s1")

    # ---- stage 2: round and pack --------------------------------------------------------------
    bits, nan = st["bits"], st["nan"]
    out = Signal(32, name=f"{name}_out")
    m.d.comb += out.eq(bits)
    with m.Switch(st["fmt"]):
        if Format.BF16 in formats:
            with m.Case(Format.BF16):
                rounded = _comb(m, bits[16:] + st["bf16_up"], unsigned(16), f"{name}_bf16")
                m.d.comb += out.eq(Mux(nan, canonical_nan(Format.BF16), rounded))
        if Format.FP16 in formats:
            with m.Case(Format.FP16):
                t = st["h_t"]
                up = t[0] & (st["h_sticky"] | t[1])
                total = _comb(m, Cat(t[1:11], st["h_exp"]) + up, unsigned(16), f"{name}_fp16")
                # Rounding up from the largest finite value carries into 0x7C00, infinity.
                inf = Cat(Const(0x7C00, 15), bits[31])
                m.d.comb += out.eq(Mux(nan, canonical_nan(Format.FP16),
                                       Mux(st["h_ovf"], inf, Cat(total[:15], bits[31]))))
        for f in formats:
            if f in (Format.E4M3, Format.E5M2):
                with m.Case(f):
                    m.d.comb += out.eq(narrow_from_fp32(m, bits, f))
    return out
