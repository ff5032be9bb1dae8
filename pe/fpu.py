"""Pipelined binary32 floating-point units of the processing element.

:class:`FMul` and :class:`FAdd` are fixed-latency pipelines with no stall and no valid bit: a
new operand pair may enter every cycle, and its result appears on ``result`` exactly
``latency`` cycles later (every stage ends in a register, ``result`` is a register output).
:class:`FMac` chains them into ``round(round(a * b) + c)``.

Arithmetic (IEEE 754 binary32): round to nearest, ties to even; subnormal inputs and outputs
(no flush to zero); overflow to infinity; ``±0`` sign rules; ``inf * 0`` and ``inf - inf`` are
invalid; every NaN result is the canonical ``0x7FC00000`` (input payloads are never
propagated). Bit-identical to numpy float32 arithmetic (:mod:`sim.model.formats`) and checked
against the Berkeley TestFloat vectors.

Timing: each stage is a few LUT levels or one carry chain (about 8 levels of logic between
registers on an ECP5), so that the units run at 100 MHz and more; the significand product is
split into four 18 x 18-bit products (one ``MULT18X18D`` each) with a register before their sum.
The last stage of both units is :func:`round_pack_fp32`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.formats import CANONICAL_NAN_FP32, leading_zeros, shift_right_sticky, trailing_zeros

__all__ = ["FMul", "FAdd", "FMac", "round_pack_fp32"]

_BIAS = 127
_INF = 0x7F800000


def _fields(m, bits, name):
    """Sign, biased exponent field, fraction, and whether the exponent field is zero."""
    sign = bits[31]
    efield = bits[23:31]
    frac = bits[:23]
    sub = Signal(name=f"{name}_sub")
    m.d.comb += sub.eq(efield == 0)
    return sign, efield, frac, sub


def round_pack_fp32(m: Module, sign, exp_field, frac, guard, sticky, *, name: str):
    """Round a binary32 fraction to nearest even and pack it (the last stage of both units).

    Parameters
    ----------
    m : Module
    sign : 1 bit
    exp_field : Value, unsigned
        The exponent field before rounding: the biased exponent of a normal result, 0 for a
        subnormal or zero one; below 2 ** 10 (255 or more gives infinity).
    frac : Value, 23 bits
        The fraction (without the integer bit).
    guard, sticky : 1 bit
        The first bit below ``frac`` and the OR of all bits below that.

    Returns
    -------
    Value, 32 bits
        The packed result. A carry out of the fraction on rounding increments the exponent
        field (a subnormal becomes the smallest normal, the largest finite value infinity).
    """
    round_up = Signal(name=f"{name}_up")
    m.d.comb += round_up.eq(guard & (sticky | frac[0]))
    total = Signal(32, name=f"{name}_total")
    m.d.comb += total.eq(Cat(frac, exp_field[:8]) + round_up)
    # Overflow, found beside the increment rather than after it.
    overflow = Signal(name=f"{name}_overflow")
    m.d.comb += overflow.eq((exp_field >= 255)
                            | ((exp_field == 254) & frac.all() & round_up))
    packed = Signal(32, name=f"{name}_packed")
    m.d.comb += packed.eq(Mux(overflow, Cat(Const(_INF, 31), sign), Cat(total[:31], sign)))
    return packed


class _BinaryUnit(wiring.Component):
    """A fixed-latency binary32 unit of two operands (the members :class:`FMul` and
    :class:`FAdd` share).

    Members
    -------
    a, b : ``In(32)``
        Binary32 operands.
    result : ``Out(32)``
        The result of the operands presented ``latency`` cycles earlier (a register output).

    Attributes
    ----------
    latency : int
        Cycles from an operand pair at ``a``/``b`` to its result at ``result``.
    """

    latency: int

    a: In(32)
    b: In(32)
    result: Out(32)


class FMul(_BinaryUnit):
    """Binary32 multiplier, six pipeline stages.

    Stages (one register after each):

    1. unpack; leading zeros of both significands; the operand that may be subnormal goes
       first (two subnormals multiply to zero); the exponent sum; specials classified;
    2. the subnormal significand normalised (left shift); exponent minus the shift; the
       right shift a result below the normal range will need;
    3. four 18 x 18-bit partial products (24 x 24 bits in all);
    4. their sum, the 48-bit significand product;
    5. align: shift right by one (product in [2, 4)) or, for a subnormal result, by the
       denormalising amount, folding the bits shifted out into a sticky bit;
    6. round to nearest even and pack (:func:`round_pack_fp32`).

    ``result`` is the binary32 product ``a * b``; ``latency`` is 6 cycles.
    """

    latency = 6

    def elaborate(self, platform) -> Module:
        m = Module()
        sa, ea, fa, a_sub = _fields(m, self.a, "a")
        sb, eb, fb, b_sub = _fields(m, self.b, "b")
        a_zero = a_sub & ~fa.any()
        b_zero = b_sub & ~fb.any()
        a_inf = ea.all() & ~fa.any()
        b_inf = eb.all() & ~fb.any()
        a_nan = ea.all() & fa.any()
        b_nan = eb.all() & fb.any()
        sign = sa ^ sb
        is_nan = a_nan | b_nan | (a_inf & b_zero) | (a_zero & b_inf)
        is_inf = a_inf | b_inf
        # Both subnormal (or zero): the product is below 2**-252 and rounds to zero.
        is_zero = a_zero | b_zero | (a_sub & b_sub)

        # ---- stage 1 ----------------------------------------------------------------------
        man_a = Cat(fa, ~a_sub)
        man_b = Cat(fb, ~b_sub)
        swap = b_sub  # the possibly subnormal operand goes first (p), the other is normal (q)
        lz_a, lz_b = leading_zeros(man_a), leading_zeros(man_b)
        s1 = {
            "p": Signal(24, name="s1_p"), "q": Signal(24, name="s1_q"),
            "lz": Signal(5, name="s1_lz"), "esum": Signal(signed(10), name="s1_esum"),
            "nesum": Signal(signed(10), name="s1_nesum"),
            "sign": Signal(name="s1_sign"), "special": Signal(name="s1_special"),
            "bits": Signal(32, name="s1_bits"),
        }
        exp_a = Cat(ea[0] | a_sub, ea[1:])  # subnormals have exponent 1
        exp_b = Cat(eb[0] | b_sub, eb[1:])
        m.d.sync += [
            s1["p"].eq(Mux(swap, man_b, man_a)),
            s1["q"].eq(Mux(swap, man_a, man_b)),
            s1["lz"].eq(Mux(swap, lz_b, lz_a)),
            s1["esum"].eq(exp_a + exp_b - _BIAS),
            s1["nesum"].eq(_BIAS + 1 - exp_a - exp_b),
            s1["sign"].eq(sign),
            s1["special"].eq(is_nan | is_inf | is_zero),
            s1["bits"].eq(Mux(is_nan, CANONICAL_NAN_FP32,
                              Cat(Const(0, 31), sign) | Mux(is_inf, _INF, 0))),
        ]

        # ---- stage 2: normalise p; exponent; denormalising shift --------------------------
        # The product of the normalised significands is in [1, 4): the value is
        # P * 2**(e0 - bias - 46) with the 48-bit product P, e0 = esum - lz.
        e0 = Signal(signed(11), name="s2_e0_c")
        m.d.comb += e0.eq(s1["esum"] - s1["lz"])
        s2 = {
            "p": Signal(24, name="s2_p"), "q": Signal(24, name="s2_q"),
            "e0": Signal(signed(11), name="s2_e0"), "normal": Signal(name="s2_normal"),
            "denorm": Signal(5, name="s2_denorm"),
            "sign": Signal(name="s2_sign"), "special": Signal(name="s2_special"),
            "bits": Signal(32, name="s2_bits"),
        }
        deficit = Signal(signed(12), name="s2_deficit_c")  # 1 - e0, beside e0
        m.d.comb += deficit.eq(s1["nesum"] + s1["lz"])
        m.d.sync += [
            s2["p"].eq((s1["p"] << s1["lz"])[:24]),
            s2["q"].eq(s1["q"]),
            s2["e0"].eq(e0),
            s2["normal"].eq(e0 >= 1),
            # A result below the normal range is shifted right by 1 - e0 (whatever the top
            # bit of the product); 27 or more leaves only sticky bits (and so does 31).
            s2["denorm"].eq(Mux(deficit[5:].any(), 31, deficit[:5])),
            s2["sign"].eq(s1["sign"]), s2["special"].eq(s1["special"]),
            s2["bits"].eq(s1["bits"]),
        ]

        # ---- stage 3: partial products (24 = 18 + 6 bits per operand) ----------------------
        pl, ph = s2["p"][:18], s2["p"][18:]
        ql, qh = s2["q"][:18], s2["q"][18:]
        pp = [Signal(36, name="s3_ll"), Signal(24, name="s3_lh"), Signal(24, name="s3_hl"),
              Signal(12, name="s3_hh")]
        s3 = {k: Signal.like(v, name=f"s3_{k}") for k, v in s2.items()
              if k not in ("p", "q", "denorm")}
        s3_denorm = Signal(5, name="s3_denorm")
        m.d.sync += [pp[0].eq(pl * ql), pp[1].eq(pl * qh), pp[2].eq(ph * ql), pp[3].eq(ph * qh),
                     s3_denorm.eq(s2["denorm"])]
        m.d.sync += [s3[k].eq(s2[k]) for k in s3]

        # ---- stage 4: the product ------------------------------------------------------------
        product = Signal(48, name="s4_product")
        s4 = {k: Signal.like(v, name=f"s4_{k}") for k, v in s3.items()}
        s4_denorm = Signal(5, name="s4_denorm")
        m.d.sync += [
            product.eq(pp[0] + ((pp[1] + pp[2]) << 18) + (pp[3] << 36)),
            s4_denorm.eq(s3_denorm),
        ]
        m.d.sync += [s4[k].eq(s3[k]) for k in s4]

        # ---- stage 5: align -----------------------------------------------------------------
        # Window P[21:48]: integer bit, 23 fraction bits, guard, and two more bits; a right
        # shift by r (1 if P >= 2, for a normal result; 1 - e0 for a subnormal one) leaves the
        # significand at [2:26] and the guard at [1]; everything lost folds into the sticky.
        top = product[47]
        window = product[21:48]
        amount = Signal(5, name="s5_amount_c")
        m.d.comb += amount.eq(Mux(s4["normal"], top, s4_denorm))
        shifted, lost = shift_right_sticky(m, window, amount, name="mul_align")
        s5 = {
            "frac": Signal(23, name="s5_frac"), "guard": Signal(name="s5_guard"),
            "sticky": Signal(name="s5_sticky"), "expf": Signal(10, name="s5_expf"),
            "sign": Signal(name="s5_sign"), "special": Signal(name="s5_special"),
            "bits": Signal(32, name="s5_bits"),
        }
        m.d.sync += [
            s5["frac"].eq(shifted[2:25]),
            s5["guard"].eq(shifted[1]),
            s5["sticky"].eq(shifted[0] | lost | product[:21].any()),
            # The exponent field: e0 + top for a normal result (up to 382: infinity); for a
            # subnormal one 0, or 1 when the shift left the integer bit set (e0 = 0, P >= 2).
            s5["expf"].eq(Mux(s4["normal"], s4["e0"] + top, shifted[25])),
            s5["sign"].eq(s4["sign"]), s5["special"].eq(s4["special"]),
            s5["bits"].eq(s4["bits"]),
        ]

        # ---- stage 6: round and pack --------------------------------------------------------
        packed = round_pack_fp32(m, s5["sign"], s5["expf"], s5["frac"], s5["guard"],
                                 s5["sticky"], name="mul_rnd")
        m.d.sync += self.result.eq(Mux(s5["special"], s5["bits"], packed))
        return m


class FAdd(_BinaryUnit):
    """Binary32 adder, six pipeline stages.

    Stages (one register after each):

    1. unpack; order the operands by magnitude (``x`` the larger, ``y`` the smaller); the
       exponent difference (both ways, then chosen); trailing zeros of ``y`` (for the sticky
       bit); specials classified;
    2. align ``y`` to ``x``: right shift with guard, round and sticky bits;
    3. add or subtract the significands (28 bits with the carry);
    4. leading zeros of the sum, limited so that the exponent stays at or above 1;
    5. normalise: left shift;
    6. round to nearest even and pack (:func:`round_pack_fp32`).

    The sign of a sum is that of the larger operand; an exact zero sum is ``+0`` unless both
    operands are ``-0``.

    ``result`` is the binary32 sum ``a + b``; ``latency`` is 6 cycles.
    """

    latency = 6

    #: Extra low-order bits of the aligned significands: guard, round and sticky.
    _GRS = 3

    def elaborate(self, platform) -> Module:
        m = Module()
        sa, ea, fa, a_sub = _fields(m, self.a, "a")
        sb, eb, fb, b_sub = _fields(m, self.b, "b")
        a_inf = ea.all() & ~fa.any()
        b_inf = eb.all() & ~fb.any()
        a_nan = ea.all() & fa.any()
        b_nan = eb.all() & fb.any()
        is_nan = a_nan | b_nan | (a_inf & b_inf & (sa ^ sb))
        is_inf = a_inf | b_inf
        inf_sign = Mux(a_inf, sa, sb)
        grs = self._GRS
        width = 24 + grs

        # ---- stage 1: order by magnitude (binary32 magnitudes order like their bits) -------
        swap = Signal(name="s1_swap_c")
        m.d.comb += swap.eq(self.b[:31] > self.a[:31])
        exp_a = Cat(ea[0] | a_sub, ea[1:])
        exp_b = Cat(eb[0] | b_sub, eb[1:])
        man_a = Cat(fa, ~a_sub)
        man_b = Cat(fb, ~b_sub)
        d_ab = Signal(9, name="s1_dab_c")
        d_ba = Signal(9, name="s1_dba_c")
        m.d.comb += [d_ab.eq(exp_a - exp_b), d_ba.eq(exp_b - exp_a)]

        def clamp(d):  # a shift of max_shift or more (up to 31) leaves only the sticky bit
            return Mux(d[5:].any(), 31, d[:5])

        tz_a, tz_b = trailing_zeros(man_a), trailing_zeros(man_b)
        s1 = {
            "x": Signal(24, name="s1_x"), "y": Signal(24, name="s1_y"),
            "exp": Signal(8, name="s1_exp"), "shift": Signal(5, name="s1_shift"),
            "tz": Signal(5, name="s1_tz"),
            "sign": Signal(name="s1_sign"), "zero_sign": Signal(name="s1_zero_sign"),
            "sub": Signal(name="s1_sub"), "special": Signal(name="s1_special"),
            "bits": Signal(32, name="s1_bits"),
        }
        m.d.sync += [
            s1["x"].eq(Mux(swap, man_b, man_a)),
            s1["y"].eq(Mux(swap, man_a, man_b)),
            s1["exp"].eq(Mux(swap, exp_b, exp_a)),
            s1["shift"].eq(Mux(swap, clamp(d_ba), clamp(d_ab))),
            s1["tz"].eq(Mux(swap, tz_a, tz_b)),
            s1["sign"].eq(Mux(swap, sb, sa)),
            s1["zero_sign"].eq(sa & sb),
            s1["sub"].eq(sa ^ sb),
            s1["special"].eq(is_nan | is_inf),
            s1["bits"].eq(Mux(is_nan, CANONICAL_NAN_FP32, Cat(Const(_INF, 31), inf_sign))),
        ]

        def carry(src, name, skip=()):
            dst = {k: Signal.like(v, name=f"{name}_{k}") for k, v in src.items() if k not in skip}
            m.d.sync += [dst[k].eq(src[k]) for k in dst]
            return dst

        # ---- stage 2: align y --------------------------------------------------------------
        # The sticky bit of the aligned y is the OR of the bits shifted out: some are set iff
        # y has fewer trailing zeros (below the GRS bits) than the shift (a zero y has 24).
        y_ext = Cat(Const(0, grs), s1["y"])
        y_shifted = Signal(width, name="s2_y_shifted_c")
        m.d.comb += y_shifted.eq(y_ext >> s1["shift"])
        lost = s1["tz"] + grs < s1["shift"]
        s2 = carry(s1, "s2", skip=("y", "shift", "tz"))
        s2_y = Signal(width, name="s2_y")
        m.d.sync += s2_y.eq(Cat(y_shifted[0] | lost, y_shifted[1:]))

        # ---- stage 3: add or subtract --------------------------------------------------------
        # x has zeros below its GRS position, so subtracting the sticky-folded y borrows
        # exactly as the exact difference would.
        x_ext = Cat(Const(0, grs), s2["x"])
        s3 = carry(s2, "s3", skip=("x",))
        total = Signal(width + 1, name="s3_sum")
        # One adder: x + ~y + 1 over the width of the sum (the carry out is dropped).
        y_signed = Cat(s2_y, Const(0, 1)) ^ Mux(s2["sub"], (1 << (width + 1)) - 1, 0)
        m.d.sync += total.eq((x_ext + y_signed + s2["sub"])[:width + 1])

        # ---- stage 4: leading zeros (the sum's top bit is one above x's integer bit) --------
        # Shift left by lz, but not below exponent 1 (the exponent of the top bit is exp + 1):
        # a subnormal sum stays subnormal.
        lz = Signal(5, name="s4_lz_c")
        m.d.comb += lz.eq(leading_zeros(total))
        s4 = carry(s3, "s4", skip=("zero_sign", "sign"))
        s4_sum = Signal(width + 1, name="s4_sum")
        s4_shift = Signal(5, name="s4_shift")
        s4_sign = Signal(name="s4_sign")
        s4_normal = Signal(name="s4_normal")
        m.d.sync += [
            s4_sum.eq(total),
            s4_shift.eq(Mux(lz > s3["exp"], s3["exp"], lz)),
            s4_sign.eq(Mux(total.any(), s3["sign"], s3["zero_sign"])),
            # The shift puts the integer bit on top (a normal result), unless the exponent
            # limits it (a subnormal result) or the sum is zero.
            s4_normal.eq((lz <= s3["exp"]) & total.any()),
        ]

        # ---- stage 5: normalise ----------------------------------------------------------------
        s5 = carry(s4, "s5", skip=("exp", "sub"))
        s5_man = Signal(width + 1, name="s5_man")
        s5_expf = Signal(9, name="s5_expf")
        s5_sign = Signal(name="s5_sign")
        m.d.sync += [
            s5_man.eq((s4_sum << s4_shift)[:width + 1]),
            # The exponent field: that of the top bit, exp + 1 - shift, for a normal result;
            # 0 for a subnormal or zero one.
            s5_expf.eq(Mux(s4_normal, s4["exp"] + 1 - s4_shift, 0)),
            s5_sign.eq(s4_sign),
        ]

        # ---- stage 6: round and pack --------------------------------------------------------
        # 28 bits: integer bit, 23 fraction bits, guard and the sticky of the rest.
        frac = s5_man[width + 1 - 24:width]
        guard = s5_man[width - 24]
        sticky = s5_man[:width - 24].any()
        packed = round_pack_fp32(m, s5_sign, s5_expf, frac, guard, sticky, name="add_rnd")
        m.d.sync += self.result.eq(Mux(s5["special"], s5["bits"], packed))
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
        ``FMul.latency + FAdd.latency`` cycles.
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
