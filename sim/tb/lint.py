"""Verilator lint of the generated Verilog: ``verilator --lint-only -Wall``, classified.

The RTL is written in Amaranth, whose Verilog backend (yosys ``write_verilog``) follows
Amaranth's own width rules: operands are extended implicitly, a reduction ``x == 0`` is written
``!x``. So Verilator's ``-Wall`` reports thousands of width warnings that are the language's
semantics, not mistakes. :func:`lint` fails only on what is a defect in generated code too:

* ``UNOPTFLAT`` (a combinational loop, or logic Verilator must iterate), ``LATCH`` /
  ``COMBDLY`` (a latch or a delayed assignment in combinational logic), ``MULTIDRIVEN``
  (a signal driven from two processes), ``ALWCOMBORDER``;
* ``WIDTHTRUNC`` other than the backend's two idioms, ``!`` on a vector (``x == 0``) and a
  shift assigned to a narrower wire (``x.bit_select(i, w)`` is written ``(x >> i)`` into a
  ``w``-bit wire): a value cut short, bits lost silently; and every ``%Error``.

The other categories are counted in the report (:attr:`LintReport.counts`) and waived.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FATAL", "LintReport", "lint"]

#: Warning categories that fail the lint whatever their context.
FATAL = ("UNOPTFLAT", "LATCH", "COMBDLY", "MULTIDRIVEN", "ALWCOMBORDER")

_WARNING = re.compile(r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (.*)$")


@dataclass
class LintReport:
    """What ``verilator --lint-only -Wall`` said about one design.

    Attributes
    ----------
    counts : Counter
        Warnings per category (``"Error"`` for errors).
    failures : list of str
        The messages that fail the lint (see the module docstring), first line of each.
    """

    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failing message."""
        return not self.failures


def _fails(kind: str, category: str | None, message: str) -> bool:
    if kind == "Error":
        return True
    if category in FATAL:
        return True
    # the backend writes `x == 0` as `!x` and a variable bit/word select as a shift into a
    # narrower wire: Verilator calls both truncations
    return (category == "WIDTHTRUNC" and "Logical operator LOGNOT" not in message
            and "Assign RHS's SHIFTR" not in message)


def lint(texts: list[str] | str, top: str, *, timeout: float = 600) -> LintReport:
    """Lint Verilog text(s) whose top module is ``top``.

    Parameters
    ----------
    texts : str or list of str
        Verilog sources (e.g. :func:`fabric.array.emit_verilog`'s tile and top).
    top : str
        Top module name.
    timeout : float
        Seconds for Verilator.

    Returns
    -------
    LintReport

    Raises
    ------
    sim.tb.harness.ToolMissingError
        If Verilator is not installed.
    """
    from sim.tb.harness import prepare_simulator

    prepare_simulator("verilator")
    if isinstance(texts, str):
        texts = [texts]
    with tempfile.TemporaryDirectory(prefix="lint-") as tmp:
        files = []
        for i, text in enumerate(texts):
            path = Path(tmp) / f"part{i}.v"
            path.write_text(text)
            files.append(str(path))
        run = subprocess.run(
            ["verilator", "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top, *files],
            capture_output=True, text=True, timeout=timeout)
    report = LintReport()
    for line in run.stderr.splitlines():
        match = _WARNING.match(line)
        if not match:
            continue
        kind, category, message = match.groups()
        report.counts[category or kind] += 1
        if _fails(kind, category, message):
            report.failures.append(line)
    if run.returncode != 0 and not report.failures:
        report.failures.append(f"verilator exited with {run.returncode}: {run.stderr[-500:]}")
    return report
