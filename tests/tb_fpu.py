"""cocotb bench of the binary32 units and format converters (``FpuHarness`` in test_fpu.py).

Operands are streamed one set per cycle (the units are pipelined, so a new pair enters every
cycle) and each output is collected ``latency`` cycles later; the results are compared with
:mod:`sim.model.formats` and the TestFloat vectors afterwards, vectorised.

Environment: ``FPU_MUL_LATENCY``, ``FPU_ADD_LATENCY``, ``FPU_MAC_LATENCY``,
``FPU_CONVERT_LATENCY`` (cycles), ``FPU_DATA_DIR`` (the compressed TestFloat files),
``FPU_SEED`` (random operands).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from hdl.formats import FLOAT_LAYOUTS, Format
from sim.model import formats as golden

LATENCY = {
    "mul": int(os.environ.get("FPU_MUL_LATENCY", "4")),
    "add": int(os.environ.get("FPU_ADD_LATENCY", "4")),
    "mac": int(os.environ.get("FPU_MAC_LATENCY", "8")),
    "widened": int(os.environ.get("FPU_CONVERT_LATENCY", "1")),
    "narrowed": int(os.environ.get("FPU_CONVERT_LATENCY", "1")),
}
DATA = Path(os.environ.get("FPU_DATA_DIR", Path(__file__).parent / "data"))
SEED = int(os.environ.get("FPU_SEED", "1"))
#: Mismatches listed in a failure message.
SHOW = 12


#: What :func:`stream` records for an output that is not a clean 0/1 value (X or Z).
UNKNOWN = -1


async def start(dut) -> None:
    """Drive every input, start the clock, and flush the pipelines (so no register still holds
    the X a 4-state simulator starts with)."""
    dut.rst.value = 0
    for name in ("a", "b", "c", "fmt"):
        getattr(dut, name).value = 0
    await Timer(1, unit="ns")
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await ClockCycles(dut.clk, max(LATENCY.values()) + 2)


async def stream(dut, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    """Drive ``inputs`` (port -> values), one element per cycle, and collect ``outputs``.

    Returns
    -------
    dict of np.ndarray of int64
        For each output port, the value it gave for each input element (sampled
        ``LATENCY[port]`` cycles after that element was driven); ``UNKNOWN`` where the output
        had X or Z bits.
    """
    count = len(next(iter(inputs.values())))
    drive = [(getattr(dut, k), np.asarray(v, dtype=np.uint32).tolist()) for k, v in inputs.items()]
    sample = [(getattr(dut, k), []) for k in outputs]
    depth = max(LATENCY[k] for k in outputs)
    for i in range(count + depth):
        await FallingEdge(dut.clk)
        # Outputs are registers: stable between rising edges. Sample, then drive the next set.
        for handle, record in sample:
            try:
                record.append(handle.value.to_unsigned())
            except ValueError:  # X or Z bits (4-state simulators)
                record.append(UNKNOWN)
        if i < count:
            for handle, values in drive:
                handle.value = values[i]
    return {
        k: np.array(record[LATENCY[k] : LATENCY[k] + count], dtype=np.int64)
        for k, (_, record) in zip(outputs, sample, strict=True)
    }


def check(what: str, operands: dict[str, np.ndarray], expected, got, digits: int = 8) -> None:
    """Assert ``got == expected`` element-wise; the message lists operands and both values."""
    expected = np.asarray(expected).astype(np.int64)
    got = np.asarray(got).astype(np.int64)
    bad = np.flatnonzero(expected != got)
    if bad.size == 0:
        return
    lines = [f"{what}: {bad.size} of {expected.size} results differ (first {min(SHOW, bad.size)}):"]
    for i in bad[:SHOW]:
        ops = " ".join(f"{k}={int(np.asarray(v)[i]):08X}" for k, v in operands.items())
        have = "X" * digits if got[i] == UNKNOWN else f"{int(got[i]):0{digits}X}"
        lines.append(f"  #{i}: {ops} expected {int(expected[i]):0{digits}X} got {have}")
    raise AssertionError("\n".join(lines))


# ------------------------------------------------------------------------------------------
# Operand generators
# ------------------------------------------------------------------------------------------

def fp32_specials() -> np.ndarray:
    """Binary32 edge cases: zeros, subnormals, min/max normals, around 1 and 2, inf, NaNs."""
    exps = [0x00, 0x01, 0x02, 0x17, 0x18, 0x19, 0x66, 0x67, 0x70, 0x71, 0x72, 0x7E, 0x7F, 0x80,
            0x8E, 0x8F, 0xFD, 0xFE, 0xFF]
    fracs = [0x000000, 0x000001, 0x000002, 0x000FFF, 0x001000, 0x001001, 0x00FFFF, 0x008000,
             0x010000, 0x3FFFFF, 0x400000, 0x400001, 0x7FE000, 0x7FF000, 0x7FFFFF]
    values = [s << 31 | e << 23 | f for s in (0, 1) for e in exps for f in fracs]
    return np.array(values, dtype=np.uint32)


def random_fp32(rng: np.random.Generator, n: int) -> np.ndarray:
    """Binary32 patterns: a third uniformly random bits, a third with exponents near the
    subnormal, overflow and unity ranges, a third drawn from :func:`fp32_specials`."""
    uniform = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    exp = rng.choice(np.r_[0:6, 0x64:0x7A, 0x7C:0x84, 0xFA:0x100], n).astype(np.uint32)
    frac = rng.integers(0, 1 << 23, n, dtype=np.uint32)
    frac = np.where(rng.random(n) < 0.3, frac & ~np.uint32(0xFFFF), frac)  # short fractions
    sign = rng.integers(0, 2, n, dtype=np.uint32) << 31
    edgy = sign | exp << 23 | frac
    specials = rng.choice(fp32_specials(), n)
    pick = rng.integers(0, 3, n)
    return np.choose(pick, [uniform, edgy, specials]).astype(np.uint32)


def format_operands(rng: np.random.Generator, fmt: Format, n: int) -> np.ndarray:
    """Element patterns of ``fmt`` in the low bits, random garbage above (which the
    converters must ignore): every pattern of an 8- or 16-bit format; for the 32-bit formats
    the specials (±0, subnormal limits, min/max normal, ±inf, NaNs) plus ``n`` random ones."""
    bits = fmt.bits
    if bits <= 16:
        elems = np.arange(1 << bits, dtype=np.uint32)
    elif fmt.is_float:
        lay = FLOAT_LAYOUTS[fmt]
        exps = [0, 1, 2, lay.bias - 1, lay.bias, lay.bias + 1, lay.exp_max - 1, lay.exp_max]
        fracs = [0, 1, 2, 1 << (lay.man_bits - 1), (1 << lay.man_bits) - 1,
                 (1 << lay.man_bits) - 2]
        specials = [s << (bits - 1) | e << lay.man_bits | f
                    for s in (0, 1) for e in exps for f in fracs]
        randoms = rng.integers(0, 1 << bits, n, dtype=np.uint64)
        elems = np.concatenate([np.array(specials, dtype=np.uint64), randoms]).astype(np.uint32)
    else:
        edges = [0, 1, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1]
        randoms = rng.integers(0, 1 << bits, n, dtype=np.uint64)
        elems = np.concatenate([np.array(edges, dtype=np.uint64), randoms]).astype(np.uint32)
    if bits == 32:
        return elems
    garbage = rng.integers(0, 1 << (32 - bits), elems.size, dtype=np.uint32) << bits
    return (elems | garbage).astype(np.uint32)


def near_ties(rng: np.random.Generator, n: int, drop_bits: int) -> np.ndarray:
    """Binary32 values whose ``drop_bits`` low bits sit at or next to a rounding tie."""
    base = random_fp32(rng, n)
    half = np.uint32(1 << (drop_bits - 1))
    low = rng.choice(np.array([half - 1, half, half + 1, 0, (half << 1) - 1], dtype=np.uint32), n)
    return (base & ~np.uint32((1 << drop_bits) - 1)) | low


def subnormal_ties(rng: np.random.Generator, n: int, fmt: Format) -> np.ndarray:
    """Binary32 values in and just below the subnormal range of ``fmt`` whose low bits sit at
    or next to the tie of rounding to ``fmt`` (the tie moves up one bit per exponent step
    below the normal range, until it is the integer bit itself)."""
    lay = FLOAT_LAYOUTS[fmt]
    e_min = 127 - lay.bias + 1  # binary32 exponent field of fmt's smallest normal
    exp = rng.integers(max(e_min - lay.man_bits - 1, 0), e_min + 1, n).astype(np.int64)
    drop = np.minimum(23 - lay.man_bits + (e_min - exp), 24)  # significand bits rounded off
    frac = rng.integers(0, 1 << 23, n).astype(np.int64)
    frac &= ~((np.int64(1) << drop) - 1)
    frac += np.where(drop < 24, np.int64(1) << np.minimum(drop - 1, 22), 0)  # the tie
    frac = np.clip(frac + rng.integers(-1, 2, n), 0, 0x7FFFFF)
    sign = rng.integers(0, 2, n).astype(np.int64) << 31
    return (sign | exp << 23 | frac).astype(np.uint32)


def fp8_range(rng: np.random.Generator, n: int, drop_bits: int) -> np.ndarray:
    """Binary32 values from below the fp8 subnormals to beyond their overflow (exponents
    0x60..0x92), half of them with the ``drop_bits`` low bits at or next to a tie."""
    exp = rng.integers(0x60, 0x93, n).astype(np.uint32)
    sign = rng.integers(0, 2, n, dtype=np.uint32) << 31
    frac = rng.integers(0, 1 << 23, n, dtype=np.uint32)
    values = sign | exp << 23 | frac
    ties = near_ties(rng, n, drop_bits) & np.uint32(0x7FFFFF) | (values & ~np.uint32(0x7FFFFF))
    return np.where(rng.random(n) < 0.5, values, ties).astype(np.uint32)


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------

@cocotb.test()
async def testfloat_mul_add_mac(dut):
    """Every TestFloat binary32 add and mul vector (46,464 each), plus FMAC on the same
    operands with an addend taken from the next vector."""
    add = golden.load_testfloat(DATA / "f32_add.rne.txt.xz")
    mul = golden.load_testfloat(DATA / "f32_mul.rne.txt.xz")
    a, b = add[:, 0], add[:, 1]
    shared = np.array_equal(add[:, :2], mul[:, :2])
    c = np.roll(b, -1)
    await start(dut)
    got = await stream(dut, {"a": a, "b": b, "c": c}, ["add", "mul", "mac"])
    check("f32_add (TestFloat)", {"a": a, "b": b}, add[:, 2], got["add"])
    if not shared:  # the generator gave the two files different operands: stream mul again
        got = await stream(dut, {"a": mul[:, 0], "b": mul[:, 1], "c": c}, ["mul", "mac"])
        a, b = mul[:, 0], mul[:, 1]
    check("f32_mul (TestFloat)", {"a": a, "b": b}, mul[:, 2], got["mul"])
    check("fmac = round(round(a*b)+c)", {"a": a, "b": b, "c": c},
          golden.fmac(a, b, c), got["mac"])


@cocotb.test()
async def testfloat_conversions(dut):
    """Every TestFloat binary32 -> bfloat16 and -> binary16 vector (600 each)."""
    await start(dut)
    for fmt, name in ((Format.BF16, "f32_to_bf16"), (Format.FP16, "f32_to_f16")):
        vec = golden.load_testfloat(DATA / f"{name}.rne.txt.xz")
        fmts = np.full(len(vec), fmt.value, dtype=np.uint32)
        got = await stream(dut, {"a": vec[:, 0], "fmt": fmts}, ["narrowed"])
        check(f"{name} (TestFloat)", {"a": vec[:, 0]}, vec[:, 1], got["narrowed"], digits=4)


@cocotb.test()
async def random_binary32_arithmetic(dut):
    """Random and special-case binary32 operands (zeros, subnormals, extremes, inf, NaNs,
    cancelling pairs) through mul, add and mac, against numpy float32."""
    rng = np.random.default_rng(SEED)
    n = 12000
    a = random_fp32(rng, n)
    b = random_fp32(rng, n)
    c = random_fp32(rng, n)
    # Cancellation and near-cancellation: b = -a, -a with the last bits changed, or a shifted.
    near = rng.random(n) < 0.2
    tweak = rng.integers(-3, 4, n).astype(np.int64)
    b = np.where(near, ((a.astype(np.int64) + tweak) & 0xFFFF_FFFF).astype(np.uint32)
                 ^ np.uint32(1 << 31), b)
    # All pairs of the specials, so every class meets every other class.
    sp = fp32_specials()
    pa, pb = np.meshgrid(sp[::3], sp[::11])
    a = np.concatenate([a, pa.ravel()])
    b = np.concatenate([b, pb.ravel()])
    c = np.concatenate([c, rng.choice(sp, pa.size)])
    await start(dut)
    got = await stream(dut, {"a": a, "b": b, "c": c}, ["add", "mul", "mac"])
    check("fadd", {"a": a, "b": b}, golden.fadd(a, b), got["add"])
    check("fmul", {"a": a, "b": b}, golden.fmul(a, b), got["mul"])
    check("fmac", {"a": a, "b": b, "c": c}, golden.fmac(a, b, c), got["mac"])


@cocotb.test()
async def widen_every_format(dut):
    """widen_dynamic in all eight formats: every pattern of the 8- and 16-bit formats, the
    specials and random patterns of the 32-bit ones, with garbage above the element; against
    sim.model.formats.widen."""
    rng = np.random.default_rng(SEED + 1)
    parts = [(fmt, format_operands(rng, fmt, 4000)) for fmt in Format]
    a = np.concatenate([p for _, p in parts])
    fmts = np.concatenate([np.full(p.size, f.value, dtype=np.uint32) for f, p in parts])
    await start(dut)
    got = await stream(dut, {"a": a, "fmt": fmts}, ["widened"])
    for fmt in Format:
        sel = fmts == fmt.value
        check(f"widen from {fmt.name}", {"a": a[sel]}, golden.widen(a[sel], fmt),
              got["widened"][sel])


@cocotb.test()
async def narrow_every_format(dut):
    """narrow_dynamic: BF16, FP16, E4M3 and E5M2 on random, special and near-tie binary32
    values against sim.model.formats.narrow (ml_dtypes); FP32 and the integer formats pass the input
    through unchanged."""
    rng = np.random.default_rng(SEED + 2)
    n = 6000
    cases = {
        Format.BF16: np.concatenate([random_fp32(rng, n), near_ties(rng, n, 16), fp32_specials(),
                                     subnormal_ties(rng, n, Format.BF16)]),
        Format.FP16: np.concatenate([random_fp32(rng, n), near_ties(rng, n, 13), fp32_specials(),
                                     subnormal_ties(rng, n, Format.FP16)]),
        # fp8: around their ranges (binary32 exponents 0x6C..0x90) and near their ties.
        Format.E4M3: np.concatenate([fp8_range(rng, n, 20), subnormal_ties(rng, n, Format.E4M3),
                                     fp32_specials()]),
        Format.E5M2: np.concatenate([fp8_range(rng, n, 21), subnormal_ties(rng, n, Format.E5M2),
                                     fp32_specials()]),
    }
    for fmt in (Format.FP32, Format.INT32, Format.INT8, Format.INT16):
        cases[fmt] = random_fp32(rng, 500)
    a = np.concatenate(list(cases.values()))
    fmts = np.concatenate([np.full(v.size, f.value, dtype=np.uint32) for f, v in cases.items()])
    await start(dut)
    got = await stream(dut, {"a": a, "fmt": fmts}, ["narrowed"])
    for fmt in cases:
        sel = fmts == fmt.value
        if fmt.is_float and fmt is not Format.FP32:
            expected, digits = golden.narrow(a[sel], fmt), fmt.bits // 4
        else:
            expected, digits = a[sel], 8  # passed through unchanged
        check(f"narrow to {fmt.name}", {"a": a[sel]}, expected, got["narrowed"][sel], digits)
