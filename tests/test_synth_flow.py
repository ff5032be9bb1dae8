"""The synthesis flow's own logic (registry, fit check, report rendering), without the tools.

`make synth` itself takes minutes to hours and is not run here; these tests cover the Python
around it: that the registry selects and derives designs correctly, that a design too big for
the device is caught before place and route, and that a smaller variant's Fmax is never
reported as the design's own.
"""

import json
import sys
from pathlib import Path

import pytest

SYNTH = Path(__file__).resolve().parent.parent / "synth"
sys.path.insert(0, str(SYNTH))

import designs as registry  # noqa: E402
import report as reporting  # noqa: E402


def test_registry_selects_in_order_and_rejects_unknown_names():
    assert [d.name for d in registry.select(["pe,router", "pe"])] == ["pe", "router"]
    # A plain run: the default designs, not the trade-off variants (which run when named).
    assert [d.name for d in registry.select([])] == ["router", "pe", "tile", "fabric2x2"]
    assert [d.name for d in registry.select(["tile_outreg"])] == ["tile_outreg"]
    with pytest.raises(registry.UnknownDesignError, match="'fabric9x9'.*router"):
        registry.select(["router", "fabric9x9"])


def test_fabric_fallback_keeps_the_tile_parameters():
    fabric = registry.get("fabric2x2")
    variant = fabric.fallback_design()
    assert variant.params == {**fabric.params, "rows": 1, "cols": 1}
    assert variant.name == "fabric2x2_fallback"
    assert variant.pnr_timeout_s == fabric.fallback_pnr_timeout_s is not None  # bounded run
    assert registry.get("router").fallback_design() is None


def test_fit_check_counts_carry_and_ram_cells_as_lut_sites():
    device = reporting.DEVICES["LFE5U-85F"]
    luts = device["LUT4"]
    assert reporting.fit_problems({"LUT4": luts - 10, "CCU2C": 5}, "LFE5U-85F") == []
    problems = reporting.fit_problems({"LUT4": luts - 10, "CCU2C": 4, "TRELLIS_DPR16X4": 2},
                                      "LFE5U-85F")
    assert problems == [f"LUT4: {luts + 2} needed, {luts} available"]


def _report(design, status, fmax=None, fallback_fmax=None):
    report = {"design": design, "status": status, "parameters": {"rows": 2},
              "ecp5": {"device": "LFE5U-85F", "resources": {"LUT4": 123456}},
              "wall_seconds": {"total": 1.0}}
    if fmax is not None:
        report["timing"] = {"fmax_mhz": {"clk": fmax}, "target_mhz": 100, "met": False}
    if fallback_fmax is not None:
        report["fallback"] = {"overrides": {"rows": 1}, "status": "ok",
                              "timing": {"fmax_mhz": {"clk": fallback_fmax}, "target_mhz": 100}}
    return report


def test_summary_labels_a_smaller_variants_fmax():
    text = reporting.render_summary([_report("big", "does_not_fit", fallback_fmax=21.37),
                                     _report("small", "ok", fmax=40.0)])
    big = next(line for line in text.splitlines() if line.startswith("| [`big`]"))
    small = next(line for line in text.splitlines() if line.startswith("| [`small`]"))
    assert "(21.4)†" in big and "| 21.4 |" not in big
    assert "| 40.0 |" in small
    assert "† `big` does not fit the device" in text and "`rows=1`" in text


def test_summary_without_any_fmax_shows_a_dash():
    text = reporting.render_summary([_report("big", "does_not_fit")])
    row = next(line for line in text.splitlines() if line.startswith("| [`big`]"))
    assert "does not fit LFE5U-85F" in row and "†" not in text


@pytest.mark.parametrize("path", sorted((SYNTH / "reports").glob("*.json")),
                         ids=lambda p: p.stem)
def test_committed_reports_render(path):
    """The committed Markdown is what the renderer makes of the committed JSON (regenerate the
    reports with `make synth`, or re-render them after changing synth/report.py)."""
    report = json.loads(path.read_text())
    text = reporting.render_markdown(report)
    assert text.startswith(f"# Synthesis report: `{report['design']}`")
    if "ecp5" in report:  # (a failed run's report has no ECP5 figures to show)
        assert str(report["ecp5"]["resources"]["LUT4"]) in text
    else:
        assert report["status"] == "failed" and report["message"] in text
    assert path.with_suffix(".md").read_text() == text


@pytest.mark.parametrize("timed_out, status", [(True, 0), (False, 1)])
def test_a_capped_variant_does_not_fail_the_run(monkeypatch, tmp_path, timed_out, status):
    import run

    def synthesise(design, args, tools, versions, **kw):
        return {"status": "does_not_fit", "total_seconds": 1.0,
                "fallback": {"status": "failed", "timed_out": timed_out}}

    monkeypatch.setattr(run, "synthesise", synthesise)
    monkeypatch.setattr(run, "find_tool", lambda name, env: name)
    monkeypatch.setattr(run, "tool_versions", lambda yosys, nextpnr: {})
    monkeypatch.setattr(reporting, "build_report", lambda build_dir: {})
    monkeypatch.setattr(reporting, "write_reports", lambda report, reports_dir: [])
    monkeypatch.setattr(reporting, "write_summary", lambda d, order=(): d / "summary.md")
    assert run.main(["fabric2x2", "--reports-dir", str(tmp_path)]) == status
