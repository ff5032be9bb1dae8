#!/usr/bin/env python3
"""Turn the yosys and nextpnr outputs of one synthesis run into the JSON and Markdown reports.

In the spirit of lowRISC Ibex's ``syn/python/get_kge.py``: the tools write machine-readable
statistics and this script condenses them into tables. It reads, from a design's build directory
``build/synth/<design>/``:

* ``meta.json``: design name, parameters, tool versions, step times and status (``run.py``);
* ``stat_generic.json`` and ``memories.json``: yosys ``stat -json -tech cmos`` after generic
  synthesis with the hierarchy kept, and the memories left as ``$mem_v2`` cells;
* ``stat_ecp5.json``: yosys ``stat -json`` after ``synth_ecp5`` (flattened);
* ``stat_ecp5_hier.json``: yosys ``stat -json`` after ``synth_ecp5 -noflatten`` (per module);
* ``nextpnr_report.json`` and ``nextpnr.log``: nextpnr-ecp5's timing/utilisation report and log;
* ``fallback/``: the same files for the smaller variant placed when the design does not fit;

and writes ``synth/reports/<design>.json``, ``synth/reports/<design>.md`` and the table over all
designs, ``synth/reports/summary.md``.

Usage::

    python synth/report.py build/synth/router        # (re)write the router's reports
    python synth/report.py --summary-only             # rewrite summary.md from the JSON reports
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEVICES",
    "ECP5_RESOURCES",
    "build_report",
    "ecp5_hier_summary",
    "fit_problems",
    "params_text",
    "pnr_no_fit",
    "render_markdown",
    "render_summary",
    "write_reports",
    "write_summary",
]

ROOT = Path(__file__).resolve().parent.parent
REPORTS_DIR = ROOT / "synth" / "reports"

#: ECP5 cell types reported as resources, in table order, with a short description.
ECP5_RESOURCES: dict[str, str] = {
    "LUT4": "4-input LUTs",
    "TRELLIS_FF": "flip-flops",
    "DP16KD": "block RAMs (16 Kib)",
    "TRELLIS_DPR16X4": "distributed RAMs (16 x 4)",
    "MULT18X18D": "18 x 18 multipliers",
    "ALU54B": "54-bit DSP ALUs",
    "CCU2C": "carry cells (2 bits)",
    "PFUMX": "LUT5 muxes",
    "L6MUX21": "LUT6 muxes",
}

#: Capacities of the devices the flow targets, per ECP5 cell type (nextpnr's figures:
#: LUT4 = TRELLIS_COMB sites, TRELLIS_DPR16X4 = TRELLIS_RAMW sites).
DEVICES: dict[str, dict[str, int]] = {
    "LFE5U-85F": {
        "LUT4": 83640,
        "TRELLIS_FF": 83640,
        "DP16KD": 208,
        "TRELLIS_DPR16X4": 10455,
        "MULT18X18D": 156,
        "ALU54B": 78,
    },
}

#: nextpnr utilisation entries shown in the reports (packed cell -> what it is).
_PNR_UTILISATION = {
    "TRELLIS_COMB": "logic cells (LUT4 + carry/RAM halves + feed-throughs)",
    "TRELLIS_FF": "flip-flops",
    "TRELLIS_RAMW": "distributed-RAM write ports",
    "DP16KD": "block RAMs",
    "MULT18X18D": "multipliers",
    "ALU54B": "DSP ALUs",
    "DCCA": "global clock buffers",
    "TRELLIS_IO": "I/O pins",
}

#: Resources shown per module (the ones that count against the device, and carry cells).
_HIER_COLUMNS = ("LUT4", "TRELLIS_FF", "CCU2C", "DP16KD", "MULT18X18D", "TRELLIS_DPR16X4")

_PARAMOD = re.compile(r"^\$paramod\$\w+\\")
_FF_TYPE = re.compile(r"^\$_(DFF|DFFE|SDFF|SDFFE|SDFFCE|DFFSR|DFFSRE|ALDFF|ALDFFE|DLATCH|SR)_")
_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_NO_FIT = re.compile(
    r"(?i)(device has only|not enough|too many|unable to (find|place)|failed to place|"
    r"no (legal|free) (placement|location|bel)s?|over-?utili[sz]ed|exceeds)"
)


# ---- reading the tools' outputs -------------------------------------------------------------


def _load(path: Path) -> Any:
    """Load a JSON file, or return ``None`` when it does not exist."""
    return json.loads(path.read_text()) if path.exists() else None


def _name(module: str) -> str:
    """A yosys module name without its leading backslash."""
    return module[1:] if module.startswith("\\") else module


def _transistors(value: Any) -> int:
    """yosys' ``estimated_num_transistors`` ("1234+") as an integer."""
    return int(str(value).rstrip("+") or 0)


def _cell_type(name: str) -> str:
    """An ECP5 cell type without backslash or ``$paramod$<hash>\\`` (``TRELLIS_DPR16X4``)."""
    return _PARAMOD.sub("", _name(name))


def generic_summary(stat: Mapping[str, Any], top: str,
                    memories: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Condense yosys ``stat -json -tech cmos`` of a hierarchical netlist.

    Parameters
    ----------
    stat : mapping
        The parsed ``stat -json`` output.
    top : str
        Top module name.
    memories : mapping, optional
        ``write_json`` of the ``$mem_v2`` cells (for their sizes).

    Returns
    -------
    dict
        ``modules``: per module its own ``cells`` (logic gates and flip-flops, not counting
        submodule instances), ``flip_flops``, ``memory_bits``, ``transistors`` (yosys' CMOS
        estimate of the combinational gates; flip-flops and memories are not counted by it),
        ``instances`` (submodule -> count) and ``cells_by_type``; ``total``: the same figures
        summed over the hierarchy below ``top`` (each module counted once per instance).
    """
    mem_bits: dict[str, int] = {}
    for mod_name, mod in (memories or {}).get("modules", {}).items():
        bits = 0
        for cell in mod.get("cells", {}).values():
            p = cell.get("parameters", {})
            bits += int(p.get("WIDTH", "0"), 2) * int(p.get("SIZE", "0"), 2)
        mem_bits[_name(mod_name)] = bits

    raw = {_name(k): v for k, v in stat.get("modules", {}).items()}
    modules: dict[str, dict[str, Any]] = {}
    for name, mod in raw.items():
        by_type = {_name(t): n for t, n in mod.get("num_cells_by_type", {}).items()}
        instances = {t: n for t, n in by_type.items() if t in raw}
        cells = {t: n for t, n in by_type.items() if t not in raw}
        modules[name] = {
            "cells": sum(cells.values()),
            "flip_flops": sum(n for t, n in cells.items() if _FF_TYPE.match(t)),
            "memory_bits": mem_bits.get(name, 0),
            "transistors": _transistors(mod.get("estimated_num_transistors", 0)),
            "instances": instances,
            "cells_by_type": dict(sorted(cells.items())),
        }
    # yosys' transistor estimate of a module includes its submodules: keep the module's own.
    hier_transistors = {name: m["transistors"] for name, m in modules.items()}
    for m in modules.values():
        m["transistors"] -= sum(n * hier_transistors[s] for s, n in m["instances"].items())

    def total(name: str, seen: tuple[str, ...] = ()) -> dict[str, int]:
        if name in seen:
            raise ValueError(f"recursive hierarchy at module {name!r}")
        mod = modules[name]
        acc = {k: mod[k] for k in ("cells", "flip_flops", "memory_bits", "transistors")}
        for sub, count in mod["instances"].items():
            for k, v in total(sub, seen + (name,)).items():
                acc[k] += count * v
        return acc

    if top not in modules:
        raise ValueError(f"top module {top!r} not in the yosys statistics ({', '.join(modules)})")
    tot = total(top)
    # Cell types over the whole hierarchy.
    by_type: dict[str, int] = {}

    def add_types(name: str, mult: int) -> None:
        for t, n in modules[name]["cells_by_type"].items():
            by_type[t] = by_type.get(t, 0) + mult * n
        for sub, count in modules[name]["instances"].items():
            add_types(sub, mult * count)

    add_types(top, 1)
    tot["cells_by_type"] = dict(sorted(by_type.items()))
    tot["module_instances"] = _count_instances(modules, top)
    return {"top": top, "modules": modules, "total": tot}


def _count_instances(modules: Mapping[str, Mapping[str, Any]], top: str) -> dict[str, int]:
    """How many times each module occurs in the hierarchy below (and including) ``top``."""
    counts: dict[str, int] = {}

    def walk(name: str, mult: int) -> None:
        counts[name] = counts.get(name, 0) + mult
        for sub, n in modules[name]["instances"].items():
            walk(sub, mult * n)

    walk(top, 1)
    return counts


def ecp5_summary(stat: Mapping[str, Any]) -> dict[str, Any]:
    """Condense yosys ``stat -json`` after ``synth_ecp5`` (a flat netlist).

    Returns
    -------
    dict
        ``resources``: the counts of :data:`ECP5_RESOURCES` (0 when absent) and ``cells``: every
        ECP5 cell type in the netlist with its count.
    """
    design = stat.get("design") or next(iter(stat.get("modules", {}).values()), {})
    cells = {
        _name(t): n
        for t, n in design.get("num_cells_by_type", {}).items()
        if not t.startswith("$scopeinfo")
    }
    return {
        "resources": {k: cells.get(k, 0) for k in ECP5_RESOURCES},
        "cells": dict(sorted(cells.items())),
    }


def ecp5_hier_summary(stat: Mapping[str, Any], top: str) -> dict[str, Any]:
    """Condense yosys ``stat -json`` after ``synth_ecp5 -noflatten`` (one module per block).

    Returns
    -------
    dict
        ``modules``: per module below ``top`` its ``instances`` (how often it occurs in the
        design), ``own`` (the ECP5 cells of :data:`ECP5_RESOURCES` in the module itself),
        ``subtree`` (the same for one instance including its submodules), ``submodules``
        (submodule -> count) and ``other_cells``; ``order``: the modules depth first from
        ``top``; ``total``: the whole design.
    """
    raw = {_name(k): v for k, v in stat.get("modules", {}).items()}
    modules: dict[str, dict[str, Any]] = {}
    for name, mod in raw.items():
        own: dict[str, int] = {}
        subs: dict[str, int] = {}
        for t, n in mod.get("num_cells_by_type", {}).items():
            t = _cell_type(t)
            if t.startswith("$scopeinfo"):
                continue
            target = subs if t in raw else own
            target[t] = target.get(t, 0) + n
        modules[name] = {
            "own": {k: own.get(k, 0) for k in ECP5_RESOURCES},
            "other_cells": {k: v for k, v in sorted(own.items()) if k not in ECP5_RESOURCES},
            "instances": subs,
        }
    if top not in modules:
        raise ValueError(f"top module {top!r} not in the yosys statistics ({', '.join(modules)})")

    subtree: dict[str, dict[str, int]] = {}

    def walk(name: str, seen: tuple[str, ...] = ()) -> dict[str, int]:
        if name in seen:
            raise ValueError(f"recursive hierarchy at module {name!r}")
        if name not in subtree:
            acc = dict(modules[name]["own"])
            for sub, count in modules[name]["instances"].items():
                for k, v in walk(sub, seen + (name,)).items():
                    acc[k] += count * v
            subtree[name] = acc
        return subtree[name]

    total = walk(top)
    counts = _count_instances(modules, top)
    order: list[str] = []

    def dfs(name: str) -> None:
        if name not in order:
            order.append(name)
            for sub in sorted(modules[name]["instances"]):
                dfs(sub)

    dfs(top)
    out = {}
    for name in order:
        mod = modules[name]
        out[name] = {"instances": counts[name], "own": mod["own"], "subtree": subtree[name],
                     "submodules": mod["instances"], "other_cells": mod["other_cells"]}
    return {"top": top, "modules": out, "order": order, "total": total}


def fit_problems(resources: Mapping[str, int], device: str) -> list[str]:
    """Resources that certainly exceed ``device`` (checked before place and route).

    The LUT demand counts each ``CCU2C`` and ``TRELLIS_DPR16X4`` as two LUT sites, as nextpnr
    packs them; it is a lower bound (nextpnr adds feed-through LUTs).

    Returns
    -------
    list of str
        One message per exceeded resource, e.g. ``"LUT4: 91000 needed, 83640 available"``.
    """
    cap = DEVICES[device]
    need = dict(resources)
    need["LUT4"] = (resources.get("LUT4", 0) + 2 * resources.get("CCU2C", 0)
                    + 2 * resources.get("TRELLIS_DPR16X4", 0))
    return [
        f"{k}: {need.get(k, 0)} needed, {avail} available"
        for k, avail in cap.items()
        if need.get(k, 0) > avail
    ]


def pnr_no_fit(log_text: str) -> str | None:
    """Why a failed nextpnr run did not fit the device, from its log, or ``None``.

    Looks for entries of the utilisation table above 100 % and for the placer's messages about
    missing sites.
    """
    over = pnr_summary(None, log_text)["over_utilized"]
    if over:
        return "; ".join(over)
    for line in log_text.splitlines():
        if line.startswith("ERROR") and _NO_FIT.search(line):
            return line.removeprefix("ERROR:").strip()
    return None


def _clock(name: str) -> str:
    """A clock name without nextpnr's ``$glbnet$`` prefix (clock edges keep their edge word)."""
    return name.replace("$glbnet$", "")


def pnr_summary(report: Mapping[str, Any] | None, log_text: str = "") -> dict[str, Any]:
    """Condense nextpnr's ``--report`` JSON (and its log, for over-utilisation).

    Returns
    -------
    dict
        ``fmax_mhz``: achieved Fmax per clock; ``target_mhz``: per clock; ``timing_met``;
        ``critical_paths``: per clock, start and end cell, logic and routing delay in ns, and
        logic levels; ``utilization``: used/available of the packed cells in use;
        ``over_utilized``: entries of the log's utilisation table above 100 %.
    """
    out: dict[str, Any] = {"fmax_mhz": {}, "target_mhz": {}, "critical_paths": {},
                           "utilization": {}, "over_utilized": []}
    for line in log_text.splitlines():
        m = _UTIL_LINE.match(line.replace("\t", " "))
        if m and int(m.group(2)) > int(m.group(3)):
            out["over_utilized"].append(f"{m.group(1)}: {m.group(2)} used, {m.group(3)} available")
    if not report:
        return out
    for clk, v in report.get("fmax", {}).items():
        out["fmax_mhz"][_clock(clk)] = round(float(v["achieved"]), 2)
        out["target_mhz"][_clock(clk)] = float(v["constraint"])
    out["timing_met"] = all(
        out["fmax_mhz"][c] >= out["target_mhz"][c] for c in out["fmax_mhz"]
    ) if out["fmax_mhz"] else None
    for cp in report.get("critical_paths", []):
        # "from"/"to" are clock edges such as "posedge clk" (or "<async>" for ports).
        src, dst = _clock(str(cp.get("from", "?"))), _clock(str(cp.get("to", "?")))
        path = cp.get("path", [])
        if not path:
            continue
        logic = sum(s["delay"] for s in path if s["type"] != "routing")
        routing = sum(s["delay"] for s in path if s["type"] == "routing")
        key = src.split()[-1] if src == dst else f"{src} -> {dst}"
        nets = [s["net"] for s in path if s["type"] == "routing" and s.get("net")]
        out["critical_paths"][key] = {
            "from": path[0]["from"]["cell"],
            "to": path[-1]["to"]["cell"],
            "logic_ns": round(logic, 2),
            "routing_ns": round(routing, 2),
            "logic_levels": sum(1 for s in path if s["type"] == "logic"),
            "modules": _path_modules(nets),
            "nets": nets,
        }
    util = report.get("utilization", {})
    out["utilization"] = {
        k: {"used": v["used"], "available": v["available"]}
        for k, v in sorted(util.items())
        if v.get("used") or k in ("TRELLIS_COMB", "TRELLIS_FF")
    }
    return out


def _path_modules(nets: Sequence[str]) -> list[str]:
    """The hierarchical scopes a path's nets belong to, in path order without repeats.

    Flattening names a net of submodule ``pe.vu`` ``pe.vu.<name>``; nets of the top module (and
    yosys' own ``$``-names) count as ``(top)``. Numeric segments (block RAM cells of a memory
    ``imem`` are ``imem.0.0``) are dropped, so a memory counts as a scope of its own. A
    heuristic: the names are those nextpnr reports, derived from the netlist's.
    """
    scopes: list[str] = []
    for net in nets:
        parts = net.split("[")[0].split(".")[:-1]
        while parts and parts[-1].isdigit():
            parts.pop()
        scope = ".".join(parts) if parts and not net.startswith("$") else "(top)"
        if not scopes or scopes[-1] != scope:
            scopes.append(scope)
    return scopes


def build_report(build_dir: Path) -> dict[str, Any]:
    """Assemble the report of one design from its build directory.

    Raises
    ------
    FileNotFoundError
        If ``meta.json`` is missing (the run never started).
    """
    build_dir = Path(build_dir)
    meta = _load(build_dir / "meta.json")
    if meta is None:
        raise FileNotFoundError(f"{build_dir / 'meta.json'} not found; run synth/run.py first")
    report: dict[str, Any] = {
        "design": meta["design"],
        "top": meta["top"],
        "description": meta.get("description", ""),
        "parameters": meta.get("parameters", {}),
        "source": meta.get("source"),
        "status": meta["status"],
        "message": meta.get("message", ""),
        "date": meta.get("date"),
        "tools": meta.get("tools", {}),
        "host": meta.get("host", {}),
    }
    stat_generic = _load(build_dir / "stat_generic.json")
    if stat_generic:
        report["generic"] = generic_summary(stat_generic, meta["top"],
                                            _load(build_dir / "memories.json"))
    stat_hier = _load(build_dir / "stat_ecp5_hier.json")
    if stat_hier:
        report["ecp5_hier"] = ecp5_hier_summary(stat_hier, meta["top"])
    stat_ecp5 = _load(build_dir / "stat_ecp5.json")
    device = meta.get("device", "LFE5U-85F")
    if stat_ecp5:
        ecp5 = ecp5_summary(stat_ecp5)
        ecp5["device"] = device
        ecp5["package"] = meta.get("package")
        ecp5["available"] = DEVICES.get(device, {})
        report["ecp5"] = ecp5
    pnr_ran = meta.get("steps", {}).get("nextpnr", {}).get("status") in ("ok", "failed")
    if pnr_ran:
        log = build_dir / "nextpnr.log"
        pnr = pnr_summary(_load(build_dir / "nextpnr_report.json"),
                          log.read_text(errors="replace") if log.exists() else "")
        pnr["out_of_context"] = meta.get("out_of_context", True)
        pnr["seed"] = meta.get("seed")
        pnr["args"] = meta.get("pnr_args", [])
        report["pnr"] = pnr
    report["timing"] = {
        "target_mhz": meta.get("freq_mhz"),
        "fmax_mhz": report.get("pnr", {}).get("fmax_mhz", {}),
        "met": report.get("pnr", {}).get("timing_met"),
    }
    report["wall_seconds"] = {
        step: info.get("seconds") for step, info in meta.get("steps", {}).items()
    }
    report["wall_seconds"]["total"] = meta.get("total_seconds")
    report["steps"] = {step: info.get("status") for step, info in meta.get("steps", {}).items()}
    report["logs"] = {
        step: info["log"] for step, info in meta.get("steps", {}).items()
        if info.get("log") and step != "fallback"
    }
    if meta.get("variant_of"):
        report["variant_of"] = meta["variant_of"]
    fb = meta.get("fallback")
    if fb:
        try:
            sub = build_report(build_dir / fb["dir"])
        except FileNotFoundError:
            sub = {"status": "failed", "message": "the variant's run left no meta.json"}
        report["fallback"] = {
            "overrides": fb.get("overrides", {}),
            "note": fb.get("note", ""),
            **{k: sub[k] for k in ("design", "top", "parameters", "status", "message", "ecp5",
                                   "pnr", "timing", "wall_seconds", "logs") if k in sub},
        }
    return report


# ---- rendering ------------------------------------------------------------------------------


def params_text(params: Mapping[str, Any]) -> str:
    """``k=v, ...`` for a parameter mapping (``(none)`` when empty)."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "(none)"


def _fmax_text(report: Mapping[str, Any]) -> str:
    fmax = report.get("timing", {}).get("fmax_mhz") or {}
    if not fmax:
        return "—"
    if len(fmax) == 1:
        return f"{next(iter(fmax.values())):.1f}"
    return ", ".join(f"{c} {f:.1f}" for c, f in fmax.items())


def _pct(used: int, avail: int | None) -> str:
    return f"{100.0 * used / avail:.1f} %" if avail else ""


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` holds one ``l``/``r`` per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


_STATUS_TEXT = {
    "ok": "synthesised, placed and routed",
    "synth_only": "synthesised (place and route skipped)",
    "does_not_fit": "does not fit the device",
    "failed": "failed",
}


def render_markdown(report: Mapping[str, Any]) -> str:
    """Render one design's report as Markdown."""
    name = report["design"]
    lines = [f"# Synthesis report: `{name}`", ""]
    if report.get("description"):
        lines += [report["description"], ""]
    status = _STATUS_TEXT.get(report["status"], report["status"])
    lines += [
        f"- parameters: `{params_text(report.get('parameters', {}))}`; top module `{report['top']}`"
        f" (from {report.get('source') or '?'})",
        f"- status: **{status}**" + (f": {report['message']}" if report.get("message") else ""),
        f"- date: {report.get('date')}; tools: "
        + ", ".join(f"{k} {v}" for k, v in report.get("tools", {}).items()),
        "",
    ]

    ecp5 = report.get("ecp5")
    pnr = report.get("pnr", {})
    if ecp5:
        lines += [f"## ECP5 resources ({ecp5['device']}, {ecp5.get('package')})", "",
                  "After `synth_ecp5` (flattened). Available = capacity of the device.", ""]
        rows = []
        for k, what in ECP5_RESOURCES.items():
            used = ecp5["resources"].get(k, 0)
            avail = ecp5.get("available", {}).get(k)
            rows.append((f"{k}", what, used, avail if avail else "", _pct(used, avail)))
        lines += _table(["cell", "what", "used", "available", "use"], rows, "llrrr")
        other = {k: v for k, v in ecp5["cells"].items() if k not in ECP5_RESOURCES}
        if other:
            lines += ["", "Other cells: " + ", ".join(f"{k} {v}" for k, v in other.items())]
        lines.append("")
    if pnr.get("utilization"):
        lines += ["## After place and route (nextpnr-ecp5)", ""]
        rows = [(k, _PNR_UTILISATION.get(k, ""), v["used"], v["available"],
                 _pct(v["used"], v["available"])) for k, v in pnr["utilization"].items()]
        lines += _table(["packed cell", "what", "used", "available", "use"], rows, "llrrr")
        lines.append("")

    hier = report.get("ecp5_hier")
    if hier:
        lines += _render_hier(hier, ecp5)

    lines += ["## Timing", ""]
    if report.get("timing", {}).get("fmax_mhz"):
        lines += _render_timing(report)
    elif report["status"] == "does_not_fit":
        lines.append(f"**No Fmax for this design: it does not fit the "
                     f"{(ecp5 or {}).get('device', 'device')}, so it was not placed and "
                     f"routed.**" + (" The next section gives the Fmax of a smaller variant "
                                     "that fits." if report.get("fallback") else ""))
    else:
        lines.append("No timing figures (place and route did not run or did not finish).")
    lines.append("")
    if report.get("fallback"):
        lines += _render_fallback(report["fallback"], report)

    gen = report.get("generic")
    if gen:
        lines += ["## Generic synthesis (yosys `synth`, hierarchy kept)", "",
                  "Cells are yosys internal gates (`$_AND_`, `$_MUX_`, flip-flops, ...) of each "
                  "module itself, without its submodules; transistors is yosys' CMOS estimate of "
                  "the combinational gates only (flip-flops and memories are not counted).", ""]
        counts = gen["total"].get("module_instances", {})
        rows = []
        for mod, info in sorted(gen["modules"].items(),
                                key=lambda kv: (kv[0] != gen["top"], kv[0])):
            subs = ", ".join(f"{s} x{n}" for s, n in info["instances"].items())
            rows.append((f"`{mod}`", counts.get(mod, 0), info["cells"], info["flip_flops"],
                         info["memory_bits"], info["transistors"], subs))
        t = gen["total"]
        rows.append(("**total**", "", t["cells"], t["flip_flops"], t["memory_bits"],
                     t["transistors"], ""))
        lines += _table(["module", "instances", "cells", "flip-flops", "memory bits",
                         "transistors", "submodules"], rows, "lrrrrrl")
        lines += ["", "Cell types (whole design): " + ", ".join(
            f"`{k}` {v}" for k, v in t["cells_by_type"].items()), ""]

    wall = report.get("wall_seconds", {})
    if wall:
        lines += ["## Run time", ""]
        rows = [(step, report.get("steps", {}).get(step, ""),
                 f"{s:.1f}" if isinstance(s, (int, float)) else "—")
                for step, s in wall.items() if step != "total"]
        total = wall.get("total")
        rows.append(("**total**", "", f"{total:.1f}" if total is not None else "—"))
        lines += _table(["step", "status", "wall time (s)"], rows, "llr")
        host = report.get("host", {})
        if host:
            lines += ["", f"Host: {host.get('cpus', '?')} CPUs, {host.get('platform', '')}."]
        lines.append("")
    if report.get("logs"):
        lines += ["Logs (not committed): " + ", ".join(
            f"`{p}`" for p in report["logs"].values()), ""]
    return "\n".join(lines)


def _render_timing(report: Mapping[str, Any]) -> list[str]:
    """The Fmax table and critical paths of a placed design."""
    timing, pnr = report.get("timing", {}), report.get("pnr", {})
    rows = []
    for clk, f in timing["fmax_mhz"].items():
        target = pnr.get("target_mhz", {}).get(clk, timing.get("target_mhz"))
        rows.append((f"`{clk}`", f"{f:.2f}", f"{target:g}", "yes" if f >= target else "no"))
    lines = _table(["clock", "Fmax (MHz)", "target (MHz)", "met"], rows)
    for clk, cp in pnr.get("critical_paths", {}).items():
        if "->" in clk:  # paths between clock edges or ports: kept in the JSON only
            continue
        total = cp["logic_ns"] + cp["routing_ns"]
        lines += ["", f"Critical path (`{clk}`): {total:.2f} ns = {cp['logic_ns']:.2f} ns "
                  f"logic ({cp['logic_levels']} levels) + {cp['routing_ns']:.2f} ns routing, "
                  f"from `{cp['from']}` to `{cp['to']}`."]
        if cp.get("modules"):
            lines[-1] += (" Scopes of its nets, in path order: "
                          + " → ".join(f"`{m}`" for m in cp["modules"]) + ".")
    lines += ["", "Place and route is out of context (`--out-of-context`: no I/O buffers, "
              "ports unconstrained, clock on general routing), so Fmax covers "
              "register-to-register paths inside the design and is indicative only."]
    if pnr.get("args"):
        lines[-1] += f" Extra nextpnr options: `{' '.join(pnr['args'])}`."
    return lines


def _render_hier(hier: Mapping[str, Any], ecp5: Mapping[str, Any] | None) -> list[str]:
    """The per-module table of ``synth_ecp5 -noflatten``."""
    lines = ["## ECP5 resources per module (`synth_ecp5 -noflatten`)", "",
             "A second `synth_ecp5` run with the hierarchy kept. *Own* counts the cells of the "
             "module itself; *with submodules* counts one instance including everything below "
             "it; *share* is that times the instances, over this run's total LUT4. Without "
             "flattening, yosys cannot optimise across module boundaries (constant ports, "
             "unused outputs), but ABC also maps each module's logic on its own, so the "
             "totals differ from the flattened run's"
             + (f" ({ecp5['resources']['LUT4']} LUT4)" if ecp5 else "")
             + " in either direction; the flattened figures are the ones placed.", ""]
    total_lut = hier["total"].get("LUT4", 0)
    rows = []
    for name in hier["order"]:
        m = hier["modules"][name]
        own, sub = m["own"], m["subtree"]
        share = _pct(m["instances"] * sub["LUT4"], total_lut)
        rows.append((f"`{name}`", m["instances"], own["LUT4"], own["TRELLIS_FF"], own["CCU2C"],
                     sub["LUT4"], sub["TRELLIS_FF"], sub["DP16KD"], sub["MULT18X18D"],
                     sub["TRELLIS_DPR16X4"], share))
    t = hier["total"]
    rows.append(("**total**", "", "", "", "", t["LUT4"], t["TRELLIS_FF"], t["DP16KD"],
                 t["MULT18X18D"], t["TRELLIS_DPR16X4"], "100.0 %"))
    lines += _table(["module", "instances", "LUT4 own", "FF own", "CCU2C own",
                     "LUT4 with submodules", "FF with submodules", "DP16KD", "MULT18X18D",
                     "DPR16X4", "share of LUT4"], rows, "lrrrrrrrrrr")
    lines.append("")
    return lines


def _render_fallback(fb: Mapping[str, Any], report: Mapping[str, Any]) -> list[str]:
    """The section on the smaller variant placed instead of a design that does not fit."""
    name = report["design"]
    lines = [f"## Fmax of a smaller variant (not of `{name}` itself)", "",
             f"`{name}` does not fit the device, so the flow synthesised, placed and routed a "
             f"smaller variant instead, with `{params_text(fb.get('overrides', {}))}` changed: "
             f"`{params_text(fb.get('parameters', {}))}`, top module `{fb.get('top', '?')}`."]
    if fb.get("note"):
        lines[-1] += f" What it stands for: {fb['note']}."
    lines.append("")
    status = _STATUS_TEXT.get(fb.get("status", ""), fb.get("status", "?"))
    lines.append(f"- status of the variant: **{status}**"
                 + (f": {fb['message']}" if fb.get("message") else ""))
    res = fb.get("ecp5", {}).get("resources")
    if res:
        avail = fb.get("ecp5", {}).get("available", {})
        lines.append("- its resources (flattened `synth_ecp5`): " + ", ".join(
            f"{k} {res.get(k, 0)}" + (f" ({_pct(res.get(k, 0), avail[k])})" if k in avail
                                      else "")
            for k in ("LUT4", "TRELLIS_FF", "CCU2C", "DP16KD", "MULT18X18D", "TRELLIS_DPR16X4")))
    util = fb.get("pnr", {}).get("utilization", {})
    if util.get("TRELLIS_COMB"):
        u = util["TRELLIS_COMB"]
        lines.append(f"- after packing: TRELLIS_COMB {u['used']} / {u['available']} "
                     f"({_pct(u['used'], u['available'])})")
    wall = fb.get("wall_seconds", {})
    if wall.get("total") is not None:
        lines.append(f"- wall time: {wall['total']:.0f} s ("
                     + ", ".join(f"{k} {v:.0f} s" for k, v in wall.items()
                                 if k != "total" and isinstance(v, (int, float))) + ")")
    lines.append("")
    if fb.get("timing", {}).get("fmax_mhz"):
        lines += _render_timing(fb)
    else:
        lines.append("The variant produced no timing figures either.")
    lines.append("")
    return lines


def _status_short(report: Mapping[str, Any]) -> str:
    status = report["status"]
    if status == "failed":
        failed = [s for s, st in report.get("steps", {}).items() if st == "failed"]
        return f"failed ({', '.join(failed)})" if failed else "failed"
    if status == "ok" and report.get("timing", {}).get("met") is False:
        return "placed and routed, timing not met"
    if status == "ok":
        return "placed and routed, timing met"
    if status == "does_not_fit":
        device = report.get("ecp5", {}).get("device", "the device")
        fb = report.get("fallback")
        if fb and fb.get("timing", {}).get("fmax_mhz"):
            return f"does not fit {device} (Fmax of a smaller variant)"
        return f"does not fit {device}"
    return _STATUS_TEXT.get(status, status)


def render_summary(reports: Sequence[Mapping[str, Any]]) -> str:
    """Render the table over all designs as Markdown."""
    lines = ["# Synthesis summary", "",
             "Lattice ECP5 LFE5U-85F (CABGA381) with yosys `synth_ecp5` and nextpnr-ecp5 "
             "(out of context). One row per design; details in `<design>.md`, machine-readable "
             "figures in `<design>.json`. Regenerate with `make synth`.", ""]
    rows = []
    for r in reports:
        res = r.get("ecp5", {}).get("resources", {})
        target = r.get("timing", {}).get("target_mhz")
        rows.append((
            f"[`{r['design']}`]({r['design']}.md)",
            f"`{params_text(r.get('parameters', {}))}`",
            res.get("LUT4", "—"), res.get("TRELLIS_FF", "—"), res.get("DP16KD", "—"),
            res.get("TRELLIS_DPR16X4", "—"), res.get("MULT18X18D", "—"), res.get("CCU2C", "—"),
            r.get("pnr", {}).get("utilization", {}).get("TRELLIS_COMB", {}).get("used", "—"),
            _fmax_text(r) if r.get("timing", {}).get("fmax_mhz")
            else _fmax_text(r.get("fallback", {})).join("()") + "†"
            if r.get("fallback", {}).get("timing", {}).get("fmax_mhz") else "—",
            f"{target:g}" if target else "—",
            r.get("generic", {}).get("total", {}).get("cells", "—"),
            r.get("generic", {}).get("total", {}).get("transistors", "—"),
            _status_short(r),
            f"{r['wall_seconds']['total']:.0f}"
            if r.get("wall_seconds", {}).get("total") is not None else "—",
        ))
    lines += _table(["design", "parameters", "LUT4", "FF", "DP16KD", "DPR16X4", "MULT18X18D",
                     "CCU2C", "logic cells", "Fmax (MHz)", "target (MHz)", "generic cells",
                     "transistors", "status", "wall time (s)"], rows, "llrrrrrrrrrrrlr")
    lines += ["", "*Logic cells* are nextpnr's placed TRELLIS_COMB cells (LUT4s, including those "
              "used as LUT RAM and carry halves; — when the design was not placed). *Generic "
              "cells* and *transistors* are technology-independent: yosys's generic gates and "
              "its CMOS transistor estimate of the logic (flip-flops and memories not counted), "
              "to set beside the WSE-3's budget of about 4.1 million transistors per core "
              "(4 trillion over 970k physical cores, about half of them in 48 KB of SRAM)."]
    lines.append("")
    notes = []
    for r in reports:
        fb = r.get("fallback")
        if r["status"] == "does_not_fit" and fb and fb.get("timing", {}).get("fmax_mhz"):
            notes.append(f"† `{r['design']}` does not fit the device: its row gives its synthesis "
                         f"area, and the Fmax in parentheses is that of a smaller variant "
                         f"(`{params_text(fb.get('overrides', {}))}`), not its own; see "
                         f"[{r['design']}.md]({r['design']}.md).")
    if notes:
        lines += notes + [""]
    return "\n".join(lines)


# ---- writing --------------------------------------------------------------------------------


def write_reports(report: Mapping[str, Any], reports_dir: Path = REPORTS_DIR) -> list[Path]:
    """Write ``<design>.json`` and ``<design>.md`` into ``reports_dir``; return their paths."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    js = reports_dir / f"{report['design']}.json"
    md = reports_dir / f"{report['design']}.md"
    js.write_text(json.dumps(report, indent=2) + "\n")
    md.write_text(render_markdown(report))
    return [js, md]


def write_summary(reports_dir: Path = REPORTS_DIR, order: Sequence[str] = ()) -> Path:
    """Write ``summary.md`` over every ``<design>.json`` in ``reports_dir``.

    Designs named in ``order`` come first, in that order; the others follow by name.
    """
    reports_dir = Path(reports_dir)
    reports = [json.loads(p.read_text()) for p in sorted(reports_dir.glob("*.json"))]
    rank = {n: i for i, n in enumerate(order)}
    reports.sort(key=lambda r: (rank.get(r["design"], len(rank)), r["design"]))
    path = reports_dir / "summary.md"
    path.write_text(render_summary(reports))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rewrite reports from build directories, then the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build_dirs", nargs="*", type=Path,
                    help="design build directories (build/synth/<design>)")
    ap.add_argument("--reports-dir", type=Path, default=REPORTS_DIR,
                    help=f"where reports go (default {REPORTS_DIR.relative_to(ROOT)})")
    ap.add_argument("--summary-only", action="store_true",
                    help="only rewrite summary.md from the JSON reports")
    args = ap.parse_args(argv)
    if not args.summary_only:
        if not args.build_dirs:
            ap.error("name at least one build directory, or use --summary-only")
        for d in args.build_dirs:
            try:
                paths = write_reports(build_report(d), args.reports_dir)
            except (FileNotFoundError, ValueError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print("wrote " + ", ".join(str(p) for p in paths))
    try:  # registry order, as run.py writes it
        from designs import DESIGNS
        order: Sequence[str] = list(DESIGNS)
    except ImportError:
        order = ()
    print(f"wrote {write_summary(args.reports_dir, order=order)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
