"""Components whose parameters are refused are never used; say so to Amaranth.

Amaranth warns (``UnusedElaboratable``) when an elaboratable is garbage-collected without having
been elaborated. A component whose ``__init__`` raises on a bad parameter is exactly that, and
the warning would then point at a line that already reported the real problem, usually later
and in an unrelated test. Components wrap their parameter checks in :func:`refusing` instead;
objects built only to validate parameters or to read a signature are passed to
:func:`mark_unused`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["refusing", "mark_unused"]


def mark_unused(*components: object) -> None:
    """Mark elaboratables as deliberately never elaborated (no ``UnusedElaboratable`` warning)."""
    for component in components:
        component._MustUse__silence = True  # read by amaranth's MustUse.__del__


@contextmanager
def refusing(component: object) -> Iterator[None]:
    """Run ``component``'s parameter checks; if they raise, mark it as deliberately unused.

    Use as ``with refusing(self): ...`` around the checks (and any sub-components built to
    validate) in ``__init__``. The exception propagates unchanged.
    """
    try:
        yield
    except BaseException:
        mark_unused(component)
        raise
