"""Floating-point units and format converters on RTL: the cocotb bench tests/tb_fpu.py streams
every TestFloat vector and random operands in every format through :class:`FpuHarness` and
compares with :mod:`sim.model.formats` bit for bit."""

from pathlib import Path

import pytest
from amaranth.hdl import Fragment, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.formats import Format, narrow_dynamic, narrow_from_fp32, widen_dynamic
from pe.fpu import FAdd, FMac, FMul
from sim.tb.harness import run_cocotb

HERE = Path(__file__).parent
#: Formats the harness rounds to (all float formats; the PE itself only needs BF16 and FP16).
NARROW_FORMATS = (Format.BF16, Format.FP16, Format.E4M3, Format.E5M2)


class FpuHarness(wiring.Component):
    """Test wrapper: the binary32 units and the format converters side by side.

    Members
    -------
    a, b, c : ``In(32)``
        Operands: ``mul = a * b`` and ``add = a + b`` (``latency`` of each unit),
        ``mac = a * b + c`` (``FMac.latency``); ``widened`` = ``widen_dynamic(a, fmt)`` and
        ``narrowed`` = ``narrow_dynamic(a, fmt)``, pipelined as the PE uses them (one
        register inside) and registered once more (2 cycles).
    fmt : ``In(3)``
        :class:`Format` code for the converters.
    """

    #: Latency of the registered converter outputs, in cycles.
    CONVERT_LATENCY = 2

    a: In(32)
    b: In(32)
    c: In(32)
    fmt: In(3)
    mul: Out(32)
    add: Out(32)
    mac: Out(32)
    widened: Out(32)
    narrowed: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fmul = fmul = FMul()
        m.submodules.fadd = fadd = FAdd()
        m.submodules.fmac = fmac = FMac()
        m.d.comb += [
            fmul.a.eq(self.a), fmul.b.eq(self.b),
            fadd.a.eq(self.a), fadd.b.eq(self.b),
            fmac.a.eq(self.a), fmac.b.eq(self.b), fmac.c.eq(self.c),
            self.mul.eq(fmul.result), self.add.eq(fadd.result), self.mac.eq(fmac.result),
        ]
        m.d.sync += [
            self.widened.eq(widen_dynamic(m, self.a, self.fmt, domain="sync")),
            self.narrowed.eq(narrow_dynamic(m, self.a, self.fmt, formats=NARROW_FORMATS,
                                            domain="sync")),
        ]
        return m


def latency_env() -> dict[str, str]:
    return {
        "FPU_MUL_LATENCY": str(FMul.latency),
        "FPU_ADD_LATENCY": str(FAdd.latency),
        "FPU_MAC_LATENCY": str(FMac.latency),
        "FPU_CONVERT_LATENCY": str(FpuHarness.CONVERT_LATENCY),
        "FPU_DATA_DIR": str(HERE / "data"),
    }


def test_latencies_are_fixed_integers():
    assert (FMul.latency, FAdd.latency) == (6, 6)
    assert FMac.latency == FMul.latency + FAdd.latency


def test_static_converters_reject_other_formats():
    m = Module()
    with pytest.raises(ValueError, match="rounds to a float format, not INT16"):
        narrow_from_fp32(m, Signal(32), Format.INT16)
    Fragment.get(m, None)  # mark the module used


@pytest.mark.parametrize("seed", [1])
def test_fpu_rtl(sim, waves, seed):
    run_cocotb(
        FpuHarness(),
        toplevel="fpu_harness",
        test_module="tb_fpu",
        test_dir=HERE,
        sim=sim,
        waves=waves,
        extra_env=latency_env() | {"FPU_SEED": str(seed)},
    )
