"""Pipelined binary32 floating-point units of the processing element.

:class:`FMul` and :class:`FAdd` are fixed-latency pipelines with no stall and no valid bit: a
new operand pair may enter every cycle, and its result appears on ``result`` exactly
``latency`` cycles later (every stage ends in a register, ``result`` is a register output).
:class:`FMac` chains them into ``round(round(a * b) + c)``.

Arithmetic (IEEE 754 binary32): round to nearest, ties to even; subnormal inputs and outputs
(no flush to zero); overflow to infinity; ``±0`` sign rules; ``inf * 0`` and ``inf - inf`` are
invalid; every NaN result is the canonical ``0x7FC00000`` (input payloads are never
propagated). Bit-identical to numpy float32 arithmetic (:mod:`sim.formats`) and checked
against the Berkeley TestFloat vectors. Normalisation and rounding reuse
:func:`hdl.formats.round_pack`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.formats import (
    CANONICAL_NAN_FP32,
    FLOAT_LAYOUTS,
    Format,
    denormalize,
    normalize,
    round_pack,
    unpack,
)

__all__ = ["FMul", "FAdd", "FMac"]

_FP32 = FLOAT_LAYOUTS[Format.FP32]
_EXP_BITS = _FP32.exp_bits  # 8
_MAN_BITS = _FP32.man_bits  # 23
_SIG_BITS = _MAN_BITS + 1  # significand with its integer bit: 24
_INF_EXP = _FP32.exp_max << _MAN_BITS  # 0x7F800000


class FMul(wiring.Component):
    """Binary32 multiplier, four pipeline stages.

    Stages (one register after each):

    1. unpack; normalise subnormal significands (leading-zero count and shift, so the product
       of normal significands is in ``[1, 4)``); add exponents; classify specials;
    2. the 24 × 24-bit significand product, a single ``*`` (maps to DSP blocks);
    3. normalise by one bit, fold the low product bits into a sticky bit, and denormalise a
       product below the normal range (:func:`~hdl.formats.denormalize`);
    4. round (RNE) and pack with :func:`~hdl.formats.round_pack` (overflow to infinity).

    Members
    -------
    a, b : ``In(32)``
        Binary32 operands.
    result : ``Out(32)``
        Binary32 ``a * b`` of the operands presented ``latency`` cycles earlier.

    Attributes
    ----------
    latency : int
        Cycles from an operand pair at ``a``/``b`` to its product at ``result``: 4.
    """

    latency = 4

    a: In(32)
    b: In(32)
    result: Out(32)

    def elaborate(self, platform) -> Module:
        m = Module()
        ua = unpack(m, self.a, _FP32)
        ub = unpack(m, self.b, _FP32)

        # Stage 1: normalise subnormal significands so both have their integer bit set (the
        # exponent may drop below 1), and add the exponents.
        exp_a, man_a = normalize(m, ua.exp, ua.man, name="norm_a")
        exp_b, man_b = normalize(m, ub.exp, ub.man, name="norm_b")
        is_nan = ua.is_nan | ub.is_nan | (ua.is_inf & ub.is_zero) | (ua.is_zero & ub.is_inf)
        sign = ua.sign ^ ub.sign

        s1_sign = Signal(name="s1_sign")
        s1_exp = Signal(signed(11), name="s1_exp")  # -171 .. 381
        s1_man_a = Signal(_SIG_BITS, name="s1_man_a")
        s1_man_b = Signal(_SIG_BITS, name="s1_man_b")
        s1_special = Signal(name="s1_special")
        s1_special_bits = Signal(32, name="s1_special_bits")
        m.d.sync += [
            s1_sign.eq(sign),
            # Biased exponent of the product for round_pack's convention (integer bit at the
            # top of the 48-bit product) when the product is below 2; +1 if it is not.
            s1_exp.eq(exp_a + exp_b - _FP32.bias),
            s1_man_a.eq(man_a),
            s1_man_b.eq(man_b),
            s1_special.eq(is_nan | ua.is_inf | ub.is_inf),
            s1_special_bits.eq(Mux(is_nan, CANONICAL_NAN_FP32, Cat(Const(_INF_EXP, 31), sign))),
        ]

        # Stage 2: the significand product.
        s2_sign = Signal(name="s2_sign")
        s2_exp = Signal.like(s1_exp, name="s2_exp")
        s2_product = Signal(2 * _SIG_BITS, name="s2_product")
        s2_special = Signal(name="s2_special")
        s2_special_bits = Signal(32, name="s2_special_bits")
        m.d.sync += [
            s2_sign.eq(s1_sign),
            s2_exp.eq(s1_exp),
            s2_product.eq(s1_man_a * s1_man_b),
            s2_special.eq(s1_special),
            s2_special_bits.eq(s1_special_bits),
        ]

        # Stage 3: one-bit normalisation, sticky, denormalisation.
        top = s2_product[-1]
        product = Mux(top, s2_product, s2_product << 1)[: 2 * _SIG_BITS]
        # Keep the integer bit, 23 fraction bits and the guard bit; OR the rest into a sticky.
        keep = _SIG_BITS + 1
        low = 2 * _SIG_BITS - keep
        significand = Cat(product[:low].any(), product[low:])
        exp, man = denormalize(m, s2_exp + top, significand, name="mul_denorm")

        s3_sign = Signal(name="s3_sign")
        s3_exp = Signal(_EXP_BITS + 1, name="s3_exp")  # 1 .. 382
        s3_man = Signal(keep + 1, name="s3_man")
        s3_special = Signal(name="s3_special")
        s3_special_bits = Signal(32, name="s3_special_bits")
        m.d.sync += [
            s3_sign.eq(s2_sign),
            s3_exp.eq(exp),
            s3_man.eq(man),
            s3_special.eq(s2_special),
            s3_special_bits.eq(s2_special_bits),
        ]

        # Stage 4: round and pack.
        packed = round_pack(m, s3_sign, s3_exp, s3_man, exp_bits=_EXP_BITS, man_bits=_MAN_BITS,
                            may_underflow=False, name="mul_rnd")
        m.d.sync += self.result.eq(Mux(s3_special, s3_special_bits, packed))
        return m


class FAdd(wiring.Component):
    """Binary32 adder, four pipeline stages.

    Stages (one register after each):

    1. unpack; order the operands by magnitude (``x`` the larger, ``y`` the smaller); exponent
       difference; classify specials;
    2. align ``y`` to ``x`` (right shift with guard, round and sticky bits) and add or subtract
       the significands (28 bits with the carry);
    3. normalise: leading-zero count and left shift (not below exponent 1, so subnormal sums
       stay subnormal);
    4. round (RNE) and pack with :func:`~hdl.formats.round_pack`.

    The sign of a sum is that of the larger operand; an exact zero sum is ``+0`` unless both
    operands are ``-0``.

    Members
    -------
    a, b : ``In(32)``
        Binary32 operands.
    result : ``Out(32)``
        Binary32 ``a + b`` of the operands presented ``latency`` cycles earlier.

    Attributes
    ----------
    latency : int
        Cycles from an operand pair at ``a``/``b`` to its sum at ``result``: 4.
    """

    latency = 4

    a: In(32)
    b: In(32)
    result: Out(32)

    #: Extra low-order bits of the aligned significands: guard, round and sticky.
    _GRS = 3

    def elaborate(self, platform) -> Module:
        m = Module()
        ua = unpack(m, self.a, _FP32)
        ub = unpack(m, self.b, _FP32)

        # Stage 1: order by magnitude (binary32 magnitudes order like their bit patterns).
        swap = self.b[:31] > self.a[:31]
        x_exp = Mux(swap, ub.exp, ua.exp)
        y_exp = Mux(swap, ua.exp, ub.exp)
        x_man = Mux(swap, ub.man, ua.man)
        y_man = Mux(swap, ua.man, ub.man)
        x_sign = Mux(swap, ub.sign, ua.sign)
        max_shift = _SIG_BITS + self._GRS  # aligning by more only feeds the sticky bit
        diff = x_exp - y_exp  # >= 0
        is_nan = ua.is_nan | ub.is_nan | (ua.is_inf & ub.is_inf & (ua.sign ^ ub.sign))
        inf_sign = Mux(ua.is_inf, ua.sign, ub.sign)

        s1_x_sign = Signal(name="s1_x_sign")
        s1_zero_sign = Signal(name="s1_zero_sign")
        s1_subtract = Signal(name="s1_subtract")
        s1_exp = Signal(_EXP_BITS, name="s1_exp")
        s1_x_man = Signal(_SIG_BITS, name="s1_x_man")
        s1_y_man = Signal(_SIG_BITS, name="s1_y_man")
        s1_shift = Signal(range(max_shift + 1), name="s1_shift")
        s1_special = Signal(name="s1_special")
        s1_special_bits = Signal(32, name="s1_special_bits")
        m.d.sync += [
            s1_x_sign.eq(x_sign),
            s1_zero_sign.eq(ua.sign & ub.sign),
            s1_subtract.eq(ua.sign ^ ub.sign),
            s1_exp.eq(x_exp),
            s1_x_man.eq(x_man),
            s1_y_man.eq(y_man),
            s1_shift.eq(Mux(diff > max_shift, max_shift, diff)),
            s1_special.eq(is_nan | ua.is_inf | ub.is_inf),
            s1_special_bits.eq(
                Mux(is_nan, CANONICAL_NAN_FP32, Cat(Const(_INF_EXP, 31), inf_sign))),
        ]

        # Stage 2: align and add. The sticky bit of the aligned y is the OR of all bits shifted
        # out; x has zeros there, so subtracting it borrows exactly as the exact difference.
        grs = self._GRS
        width = _SIG_BITS + grs
        y_ext = Cat(Const(0, grs), s1_y_man)
        y_shifted = y_ext >> s1_shift
        lost = (y_ext & ~(Const((1 << width) - 1, width) << s1_shift)[:width]).any()
        y_aligned = Cat(y_shifted[0] | lost, y_shifted[1:])
        x_ext = Cat(Const(0, grs), s1_x_man)
        total = Mux(s1_subtract, x_ext - y_aligned, x_ext + y_aligned)[: width + 1]

        s2_x_sign = Signal(name="s2_x_sign")
        s2_zero_sign = Signal(name="s2_zero_sign")
        s2_exp = Signal(_EXP_BITS, name="s2_exp")
        s2_sum = Signal(width + 1, name="s2_sum")
        s2_special = Signal(name="s2_special")
        s2_special_bits = Signal(32, name="s2_special_bits")
        m.d.sync += [
            s2_x_sign.eq(s1_x_sign),
            s2_zero_sign.eq(s1_zero_sign),
            s2_exp.eq(s1_exp),
            s2_sum.eq(total),
            s2_special.eq(s1_special),
            s2_special_bits.eq(s1_special_bits),
        ]

        # Stage 3: normalise. The sum's top bit is the carry, one above x's integer bit, hence
        # exponent + 1 in round_pack's convention.
        exp, man = normalize(m, s2_exp + 1, s2_sum, min_exp=1, name="add_norm")

        s3_sign = Signal(name="s3_sign")
        s3_exp = Signal(_EXP_BITS + 1, name="s3_exp")  # 1 .. 255
        s3_man = Signal(width + 1, name="s3_man")
        s3_special = Signal(name="s3_special")
        s3_special_bits = Signal(32, name="s3_special_bits")
        m.d.sync += [
            s3_sign.eq(Mux(s2_sum.any(), s2_x_sign, s2_zero_sign)),
            s3_exp.eq(exp),
            s3_man.eq(man),
            s3_special.eq(s2_special),
            s3_special_bits.eq(s2_special_bits),
        ]

        # Stage 4: round and pack.
        packed = round_pack(m, s3_sign, s3_exp, s3_man, exp_bits=_EXP_BITS, man_bits=_MAN_BITS,
                            may_underflow=False, name="add_rnd")
        m.d.sync += self.result.eq(Mux(s3_special, s3_special_bits, packed))
        return m


class FMac(wiring.Component):
    """Binary32 multiply-accumulate ``round(round(a * b) + c)``: an :class:`FMul` feeding an
    :class:`FAdd` (two roundings, bit-identical to numpy float32 ``a * b + c``).

    ``c`` is delayed by ``FMul.latency`` cycles inside, so ``a``, ``b`` and ``c`` are presented
    together.

    Members
    -------
    a, b : ``In(32)``
        Binary32 multiplicands.
    c : ``In(32)``
        Binary32 addend.
    result : ``Out(32)``
        ``round(round(a * b) + c)`` of the operands presented ``latency`` cycles earlier.

    Attributes
    ----------
    latency : int
        ``FMul.latency + FAdd.latency`` = 8 cycles.
    """

    latency = FMul.latency + FAdd.latency

    a: In(32)
    b: In(32)
    c: In(32)
    result: Out(32)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mul = mul = FMul()
        m.submodules.add = add = FAdd()
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]
        c = self.c
        for i in range(FMul.latency):
            delayed = Signal(32, name=f"c_delay{i}")
            m.d.sync += delayed.eq(c)
            c = delayed
        m.d.comb += [add.a.eq(mul.result), add.b.eq(c), self.result.eq(add.result)]
        return m
