"""What the bench scripts share: the argument parser's common options, ``--json`` output and
tables. (A helper, not a bench: ``make bench`` skips files whose name starts with ``_``.)"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Sequence

__all__ = ["parser", "parse", "emit", "table"]


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc`` (the script's docstring), with
    ``--json``; add the script's own options, then call :func:`parse`."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    return ap


def parse(ap: argparse.ArgumentParser, *, sim: bool = False) -> argparse.Namespace:
    """Parse the command line; ``sim`` adds ``--sim`` (the simulator; ``None`` = the default)."""
    if sim:
        ap.add_argument("--sim", default=None, help="verilator (default) or icarus")
    return ap.parse_args()


def emit(args: argparse.Namespace, data, text: Callable[[], str]) -> None:
    """Print ``data`` as one JSON object with ``--json``, else the report ``text()`` builds."""
    print(json.dumps(data) if args.json else text())


def table(columns: Sequence[tuple[str, int, str]], rows: Iterable[Sequence]) -> str:
    """A text table of right-aligned columns separated by one space.

    Parameters
    ----------
    columns : sequence of (header, width, format spec)
        The format spec (e.g. ``".2f"``, ``","``, ``""``) formats each cell; a cell wider than
        ``width`` pushes the rest of its line right.
    rows : iterable of sequences
        One value per column.
    """
    lines = [" ".join(f"{header:>{width}}" for header, width, _ in columns)]
    for row in rows:
        lines.append(" ".join(format(value, f">{width}{spec}")
                              for value, (_, width, spec) in zip(row, columns, strict=True)))
    return "\n".join(lines)
