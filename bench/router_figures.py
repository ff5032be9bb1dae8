#!/usr/bin/env python3
"""Router figures on RTL: latency per hop and sustained throughput per output port.

Runs the ``figures`` test of :mod:`sim.tb.router_bench` on the simulator and prints

* ``latency_cycles_per_hop``: cycles from a wavelet's transfer into an idle router to its
  transfer out (one hop);
* ``throughput_unicast``: wavelets per cycle at the output of a 2000-wavelet W -> E stream;
* ``throughput_multicast``: the lowest rate among the three outputs of a 3-way multicast stream;
* ``throughput_two_colours_one_output``: wavelets per cycle at one output fed by two colours from
  two inputs (the output's total rate; each colour gets half);
* ``uniform_random``: accepted throughput under uniform random traffic (all five inputs, random
  colours, each colour routed to a random output) as the offered load rises, beside the ideal
  output-queued figure for the same traffic (wavelets per cycle per port), and
  ``saturation_ratio``: accepted over ideal at full offered load (the NoC papers' figure).

With ``--output-register`` the router registers its outputs (two cycles per hop; the depth
defaults to 3 then, the least for one wavelet per cycle per colour).

Usage: ``python bench/router_figures.py [--json] [--colors N] [--depth D] [--output-register]
[--sim verilator|icarus]``
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from _common import emit, parse, parser

from router import Router
from router.params import DEFAULT_COLORS, min_queue_depth
from sim.tb.harness import default_simulator, run_cocotb


def measure(num_colors: int, depth: int, sim: str, output_register: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        t0 = time.perf_counter()
        run_cocotb(
            Router(num_colors=num_colors, queue_depth=depth, output_register=output_register),
            toplevel=f"router_c{num_colors}_d{depth}{'_or' if output_register else ''}",
            test_module="sim.tb.router_bench",
            testcase="figures",
            sim=sim,
            extra_env={"ROUTER_NUM_COLORS": str(num_colors), "ROUTER_QUEUE_DEPTH": str(depth),
                       "ROUTER_OUTPUT_REGISTER": str(int(output_register)),
                       "ROUTER_FIGURES": str(out)},
        )
        figures = json.loads(out.read_text())
    top = figures["uniform_random"][-1]
    figures.update(num_colors=num_colors, queue_depth=depth, output_register=output_register,
                   simulator=sim,
                   saturation_ratio=round(top["accepted"] / top["ideal"], 4),
                   wall_seconds=round(time.perf_counter() - t0, 2))
    return figures


def text(figures: dict) -> str:
    """The figures as a short report."""
    rows = [
        ("latency per hop", figures["latency_cycles_per_hop"], "cycles"),
        ("unicast throughput", figures["throughput_unicast"], "wavelets/cycle/port"),
        ("multicast throughput (3-way)", figures["throughput_multicast"], "wavelets/cycle/port"),
        ("two colours -> one output", figures["throughput_two_colours_one_output"],
         "wavelets/cycle"),
    ]
    registered = ", registered outputs" if figures["output_register"] else ""
    lines = [f"router, {figures['num_colors']} colours, queue depth {figures['queue_depth']}"
             f"{registered}, on {figures['simulator']}"]
    lines += [f"  {name:32s} {value:8.3f} {unit}" for name, value, unit in rows]
    lines += ["  uniform random traffic (wavelets/cycle/port):",
              "    offered  accepted  ideal (output-queued)"]
    lines += [f"    {r['offered']:7.2f}  {r['accepted']:8.3f}  {r['ideal']:8.3f}"
              for r in figures["uniform_random"]]
    lines.append(f"  saturation: accepted / ideal = {figures['saturation_ratio']:.3f}")
    return "\n".join(lines)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--colors", type=int, default=DEFAULT_COLORS,
                    help=f"num_colors (default {DEFAULT_COLORS})")
    ap.add_argument("--depth", type=int, default=None,
                    help="queue depth (default 2; 3 with --output-register)")
    ap.add_argument("--output-register", action="store_true",
                    help="register the router's outputs (two cycles per hop)")
    args = parse(ap, sim=True)
    depth = args.depth if args.depth is not None else min_queue_depth(args.output_register)
    figures = measure(args.colors, depth, args.sim or default_simulator(), args.output_register)
    emit(args, figures, lambda: text(figures))


if __name__ == "__main__":
    main()
