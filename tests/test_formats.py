"""Golden model of the number formats (sim/model/formats.py): the format enum, exact conversions
against ml_dtypes and an independent decoder, RNE narrowing, and binary32 arithmetic against
the Berkeley TestFloat vectors."""

import math
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from hdl.formats import FLOAT_LAYOUTS, Format
from sim.model import formats as F

DATA = Path(__file__).parent / "data"
SHARED = Path("/work/shared/testfloat")
ML_DTYPES = {
    Format.BF16: ml_dtypes.bfloat16,
    Format.FP16: np.float16,
    Format.E4M3: ml_dtypes.float8_e4m3fn,
    Format.E5M2: ml_dtypes.float8_e5m2,
}
NARROW_FLOATS = tuple(ML_DTYPES)


def vectors(name: str) -> np.ndarray:
    return F.load_testfloat(DATA / f"{name}.rne.txt.xz")


def all_patterns(fmt: Format) -> np.ndarray:
    return np.arange(1 << fmt.bits, dtype=np.uint64).astype(np.uint32)


def decode(bits: int, fmt: Format) -> float:
    """Independent decoder of one float pattern from the IEEE / OCP definitions."""
    lay = FLOAT_LAYOUTS[fmt]
    sign = -1.0 if bits >> (lay.width - 1) & 1 else 1.0
    e = bits >> lay.man_bits & lay.exp_max
    f = bits & ((1 << lay.man_bits) - 1)
    if e == lay.exp_max and (lay.has_inf or f == (1 << lay.man_bits) - 1):
        return sign * math.inf if lay.has_inf and f == 0 else math.nan
    if e == 0:
        return sign * math.ldexp(f, 1 - lay.bias - lay.man_bits)
    return sign * math.ldexp((1 << lay.man_bits) | f, e - lay.bias - lay.man_bits)


def assert_bits_equal(what, operands, expected, got):
    expected = np.asarray(expected).astype(np.uint64)
    got = np.asarray(got).astype(np.uint64)
    bad = np.flatnonzero(expected != got)
    if bad.size:
        i = bad[0]
        ops = " ".join(f"{k}={int(np.asarray(v)[i]):X}" for k, v in operands.items())
        pytest.fail(f"{what}: {bad.size} mismatches, first #{i}: {ops} expected "
                    f"{int(expected[i]):X} got {int(got[i]):X}")


# --- the format enum ---------------------------------------------------------------------

def test_format_codes_widths_and_kinds():
    assert [f.value for f in Format] == list(range(8))
    assert [f.bits for f in Format] == [32, 16, 16, 8, 8, 8, 16, 32]
    assert [f.is_float for f in Format] == [True] * 5 + [False] * 3
    assert Format.E4M3.layout.bias == 7 and not Format.E4M3.layout.has_inf
    assert Format.FP32.layout.canonical_nan == F.CANONICAL_NAN == 0x7FC00000
    assert (F.CANONICAL_NAN_BF16, F.CANONICAL_NAN_FP16) == (0x7FC0, 0x7E00)
    assert Format.E4M3.layout.canonical_nan == 0x7F and Format.E5M2.layout.canonical_nan == 0x7E
    with pytest.raises(ValueError, match="INT8 is an integer format"):
        _ = Format.INT8.layout


@pytest.mark.parametrize("name, fmt", [
    ("fp32", Format.FP32), ("BF16", Format.BF16), ("fp16", Format.FP16), ("e4m3", Format.E4M3),
    ("FP8_E4M3", Format.E4M3), ("e5m2", Format.E5M2), ("fp8_e5m2", Format.E5M2),
    ("int8", Format.INT8), ("Int16", Format.INT16), ("int32", Format.INT32),
])
def test_format_from_name(name, fmt):
    assert Format.from_name(name) is fmt


@pytest.mark.parametrize("bad", ["fp64", "", "e4m3fnuz", 3])
def test_format_from_name_rejects_unknown(bad):
    with pytest.raises(ValueError, match="valid names are fp32, bf16, fp16, e4m3, fp8_e4m3"):
        Format.from_name(bad)


# --- widen --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", NARROW_FLOATS, ids=lambda f: f.name)
def test_widen_every_pattern_matches_ml_dtypes_and_the_definition(fmt):
    bits = all_patterns(fmt)
    got = F.widen(bits, fmt)
    assert got.dtype == np.uint32
    reference = bits.astype({16: np.uint16, 8: np.uint8}[fmt.bits]).view(ML_DTYPES[fmt])
    expected = reference.astype(np.float32).view(np.uint32).copy()
    expected[np.isnan(reference.astype(np.float32))] = F.CANONICAL_NAN
    assert_bits_equal(f"widen {fmt.name} vs ml_dtypes", {"x": bits}, expected, got)
    # From the definition (float64 arithmetic, then exact conversion to float32).
    defined = np.array([decode(int(b), fmt) for b in bits], dtype=np.float64).astype(np.float32)
    expected = defined.view(np.uint32).copy()
    expected[np.isnan(defined)] = F.CANONICAL_NAN
    assert_bits_equal(f"widen {fmt.name} vs definition", {"x": bits}, expected, got)


def test_widen_fp32_is_the_identity():
    bits = np.array([0, 0x80000000, 0x7FC00001, 0xFFFFFFFF, 0x00000001], dtype=np.uint32)
    assert_bits_equal("widen fp32", {"x": bits}, bits, F.widen(bits, "fp32"))


def test_widen_integers_sign_extend():
    assert F.widen([0x7F, 0x80, 0xFF, 0x1FF], Format.INT8).tolist() == [
        0x7F, 0xFFFFFF80, 0xFFFFFFFF, 0xFFFFFFFF]
    assert F.widen([0x8000, 0x17FFF], "int16").tolist() == [0xFFFF8000, 0x7FFF]
    assert F.widen([-1, 5], Format.INT32).tolist() == [0xFFFFFFFF, 5]


# --- narrow -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", NARROW_FLOATS, ids=lambda f: f.name)
def test_narrow_round_trips_every_pattern(fmt):
    bits = all_patterns(fmt)
    back = F.narrow(F.widen(bits, fmt), fmt)
    assert back.dtype == {16: np.uint16, 8: np.uint8}[fmt.bits]
    lay = fmt.layout
    is_nan = np.isnan(bits.astype({16: np.uint16, 8: np.uint8}[fmt.bits])
                      .view(ML_DTYPES[fmt]).astype(np.float32))
    expected = np.where(is_nan, lay.canonical_nan, bits)
    assert_bits_equal(f"narrow(widen(x)) in {fmt.name}", {"x": bits}, expected, back)


@pytest.mark.parametrize("fmt", NARROW_FLOATS, ids=lambda f: f.name)
def test_narrow_midpoints_round_to_even(fmt):
    """Every midpoint between neighbouring finite values (exact in binary32) goes to the
    neighbour with an even significand; a hair above or below goes to the nearer one."""
    lay = fmt.layout
    # the largest finite pattern: below infinity, or below the only NaN of E4M3
    top = (lay.exp_max << lay.man_bits) - 1 if lay.has_inf else lay.canonical_nan - 1
    lo = np.arange(0, top, dtype=np.uint32)
    hi = lo + 1
    mid = (F.from_bits(F.widen(lo, fmt)).astype(np.float64)
           + F.from_bits(F.widen(hi, fmt)).astype(np.float64)) / 2
    mid32 = F.to_bits(mid.astype(np.float32))
    assert np.array_equal(F.from_bits(mid32).astype(np.float64), mid), "midpoint not exact"
    even = np.where(lo % 2 == 0, lo, hi)
    assert_bits_equal(f"{fmt.name} midpoints", {"x": mid32}, even, F.narrow(mid32, fmt))
    nonzero = mid32 != 0
    assert_bits_equal(f"{fmt.name} above midpoints", {"x": mid32[nonzero] + 1}, hi[nonzero],
                      F.narrow(mid32[nonzero] + 1, fmt))
    assert_bits_equal(f"{fmt.name} below midpoints", {"x": mid32[nonzero] - 1}, lo[nonzero],
                      F.narrow(mid32[nonzero] - 1, fmt))
    negative = F.narrow(mid32 | np.uint32(1 << 31), fmt)
    assert_bits_equal(f"{fmt.name} negative midpoints", {"x": mid32}, even | (1 << (fmt.bits - 1)),
                      negative)


def test_narrow_overflow_infinity_and_nan():
    # the largest binary32 (rounds beyond every narrow format), infinities, a negative NaN
    big = np.array([0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0xFFC12345], dtype=np.uint32)
    assert F.narrow(big, "bf16").tolist() == [0x7F80, 0xFF80, 0x7F80, 0xFF80, 0x7FC0]
    assert F.narrow(big, "fp16").tolist() == [0x7C00, 0xFC00, 0x7C00, 0xFC00, 0x7E00]
    assert F.narrow(big, "e5m2").tolist() == [0x7C, 0xFC, 0x7C, 0xFC, 0x7E]
    # E4M3 has no infinity: overflow is NaN, and every NaN is the canonical 0x7F.
    assert F.narrow(big, "e4m3").tolist() == [0x7F] * 5
    assert F.narrow(F.to_bits(np.float32([464.0, 465.0, -448.0])), "e4m3").tolist() == [
        0x7E, 0x7F, 0xFE]


def test_narrow_identity_and_integer_wrap():
    x = np.array([0x12345678, 0xFFFFFF80, 0x7FC00001], dtype=np.uint32)
    assert F.narrow(x, "fp32").tolist() == x.tolist()
    assert F.narrow(x, "int32").tolist() == x.tolist()
    assert F.narrow(x, "int16").tolist() == [0x5678, 0xFF80, 0x0001]
    assert F.narrow(x, "int8").tolist() == [0x78, 0x80, 0x01]


@pytest.mark.parametrize("name, fmt", [("f32_to_bf16", Format.BF16), ("f32_to_f16", Format.FP16)])
def test_narrow_matches_testfloat(name, fmt):
    vec = vectors(name)
    assert len(vec) == 600
    assert_bits_equal(name, {"a": vec[:, 0]}, vec[:, 1], F.narrow(vec[:, 0], fmt))


def test_narrow_random_matches_ml_dtypes():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    for fmt, dtype in ML_DTYPES.items():
        with np.errstate(all="ignore"):
            ref = x.view(np.float32).astype(dtype)
        expected = ref.view({16: np.uint16, 8: np.uint8}[fmt.bits]).copy()
        expected[np.isnan(ref.astype(np.float32))] = fmt.layout.canonical_nan
        assert_bits_equal(f"narrow {fmt.name}", {"x": x}, expected, F.narrow(x, fmt))


# --- binary32 arithmetic ------------------------------------------------------------------

@pytest.mark.parametrize("name, op", [("f32_add", F.fadd), ("f32_mul", F.fmul)])
def test_arithmetic_matches_testfloat(name, op):
    vec = vectors(name)
    assert len(vec) == 46_464
    assert_bits_equal(name, {"a": vec[:, 0], "b": vec[:, 1]}, vec[:, 2], op(vec[:, 0], vec[:, 1]))


def test_arithmetic_special_rules():
    pz, nz, inf, ninf, one = 0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x3F800000
    snan = 0xFF812345
    assert F.fadd([nz, pz, nz, one], [nz, nz, pz, one | 1 << 31]).tolist() == [nz, pz, pz, pz]
    assert F.fadd([inf, inf, snan], [ninf, inf, one]).tolist() == [F.CANONICAL_NAN, inf,
                                                                   F.CANONICAL_NAN]
    assert F.fmul([inf, nz, 0x00000001], [pz, one, 0x3F000000]).tolist() == [
        F.CANONICAL_NAN, nz, 0]  # inf*0, -0*1, the smallest subnormal halved ties to even 0
    assert F.fmul(0x00800000, 0x3F000000).tolist() == 0x00400000  # subnormal result kept


def test_fmac_rounds_twice():
    """round(round(a*b) + c), not a fused multiply-add."""
    c = F.to_bits(np.float32(-1))
    a = F.to_bits(np.float32(1 + 2**-23))  # a*a = 1 + 2**-22 + 2**-46, rounds to 1 + 2**-22
    assert F.from_bits(F.fmac(a, a, c)) == np.float32(2**-22)  # fused: 2**-22 + 2**-46
    x = F.to_bits(np.float32(1 + 2**-12))  # x*x = 1 + 2**-11 + 2**-24: a tie, to even
    assert F.from_bits(F.fmac(x, x, c)) == np.float32(2**-11)  # fused: 2**-11 + 2**-24
    rng = np.random.default_rng(3)
    v = rng.standard_normal((3, 1000)).astype(np.float32)
    expected = F.to_bits(v[0] * v[1] + v[2])  # numpy float32 rounds each step
    assert_bits_equal("fmac", {}, expected, F.fmac(*[F.to_bits(r) for r in v]))


def test_fmax_nan_and_signed_zero():
    pz, nz, one, mone = 0x00000000, 0x80000000, 0x3F800000, 0xBF800000
    assert F.fmax([nz, pz, nz, one, mone], [pz, nz, nz, mone, 0x7F800001]).tolist() == [
        pz, pz, nz, one, F.CANONICAL_NAN]
    assert F.fmax(0xFFC00001, one).tolist() == F.CANONICAL_NAN


def test_integer_arithmetic_wraps():
    assert F.iadd(0x7FFFFFFF, 1).tolist() == 0x80000000
    assert F.imul(0x10000, 0x10000).tolist() == 0
    assert F.imul(0xFFFFFFFF, 0xFFFFFFFF).tolist() == 1
    assert F.imul([0x80, 0x7F], [0x80, 0xFF], "int8").tolist() == [0x4000, 0xFFFFFF81]
    assert F.imac([0x8000], [0x8000], [0x7FFFFFFF], Format.INT16).tolist() == [0xBFFFFFFF]
    with pytest.raises(ValueError, match="not FP16"):
        F.iadd(1, 2, Format.FP16)


def test_imax_is_a_signed_comparison():
    # -1 < 0, INT_MIN < 5, and int8 operands are sign-extended first (-128 < 127).
    assert F.imax([0xFFFFFFFF, 5, 0x80000000], [0, 0x80000000, 0x7FFFFFFF]).tolist() == [
        0, 5, 0x7FFFFFFF]
    assert F.imax([0x80, 0x90], [0x7F, 0], "int8").tolist() == [0x7F, 0]


def test_bits_conversions_and_no_flush_to_zero():
    v = np.array([0.0, -0.0, 1.5, -np.inf, 1e-45], dtype=np.float32)
    bits = F.to_bits(v)
    assert bits.tolist() == [0, 0x80000000, 0x3FC00000, 0xFF800000, 1]
    assert np.array_equal(F.from_bits(bits), v)
    assert F.fadd(1, 1).tolist() == 2  # subnormal + subnormal is not flushed


def test_testfloat_copies_match_the_shared_originals():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not on this machine")
    for original in sorted(SHARED.glob("*.txt")):
        copy = F.load_testfloat(DATA / f"{original.name}.xz")
        assert np.array_equal(copy, F.load_testfloat(original)), original.name
