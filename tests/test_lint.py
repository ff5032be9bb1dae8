"""Verilator lint (``verilator --lint-only -Wall``) of the tile and of a 2 x 2 fabric, with the
classification of :mod:`sim.tb.lint`; and the lint shown to fail on planted defects."""

import pytest

from fabric.array import TILE_MODULE, FabricParams, emit_verilog
from sim.tb.harness import ToolMissingError, to_verilog
from sim.tb.lint import lint


@pytest.fixture(scope="module", autouse=True)
def verilator():
    try:
        from sim.tb.harness import prepare_simulator

        prepare_simulator("verilator")
    except ToolMissingError as exc:
        pytest.skip(str(exc))


def _show(report) -> str:
    return "\n".join(report.failures[:20]) + f"\ncounts: {dict(report.counts)}"


def test_tile_lints_clean():
    params = FabricParams(rows=1, cols=1)  # the default tile: 24 colours
    report = lint(to_verilog(params.tile(), TILE_MODULE), TILE_MODULE)
    assert report.ok, _show(report)


def test_fabric_2x2_lints_clean():
    params = FabricParams(rows=2, cols=2, spares=1)
    report = lint(emit_verilog(params), params.name())
    assert report.ok, _show(report)


# ---- planted defects --------------------------------------------------------------------------

_LOOP = """
module loop(input a, output y);
  wire b;
  assign b = a ^ y;
  assign y = b & a;
endmodule
"""

_TRUNC = """
module trunc(input [7:0] a, output [3:0] y);
  assign y = a + 8'd1;
endmodule
"""

_MULTI = """
module multi(input clk, input clk2, input a, input b, output reg y);
  always @(posedge clk) y <= a;
  always @(posedge clk2) y <= b;
endmodule
"""

_BACKEND_IDIOM = """
module idiom(input [4:0] a, input [2:0] i, output y, output z);
  assign y = ! a;
  assign z = a >> i;
endmodule
"""


@pytest.mark.parametrize("text, top, category", [
    (_LOOP, "loop", "UNOPTFLAT"), (_TRUNC, "trunc", "WIDTHTRUNC"),
    (_MULTI, "multi", "MULTIDRIVEN")])
def test_lint_fails_on_planted_defects(text, top, category):
    report = lint(text, top)
    assert not report.ok and any(category in f for f in report.failures), _show(report)


def test_lint_waives_the_backends_reduction_idiom():
    report = lint(_BACKEND_IDIOM, "idiom")
    assert report.ok and report.counts["WIDTHTRUNC"] == 2, _show(report)
