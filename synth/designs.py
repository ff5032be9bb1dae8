"""The designs that ``make synth`` synthesises: a small registry.

Each entry names a design, a factory that builds it and the parameters passed to the factory.
The factory returns either

* an Amaranth ``wiring.Component`` (its ports come from its signature), converted to RTLIL under
  the entry's ``top`` name, or
* ready Verilog: one text or a list of texts (for a design emitted as several modules tied
  together with ``Instance``), whose top module is the entry's ``top``; or a
  :class:`VerilogSources`, which names its own top module.

To add a design, write a factory that imports its package lazily (so that ``--list`` and the
error for an unknown name never elaborate anything) and add a :class:`Design` to ``DESIGNS``.
Planned: ``pe`` (one processing element), ``tile`` (router + PE + bypass muxes) and
``fabric_2x2_s1`` (a 2 x 2 logical array with one spare column, emitted as one tile module
instantiated by name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Design", "VerilogSources", "UnknownDesignError", "DESIGNS", "get", "select"]

#: Default place-and-route target frequency, in MHz.
DEFAULT_FREQ_MHZ = 100.0


class UnknownDesignError(LookupError):
    """A design name that is not in the registry; the message lists the known ones."""


class VerilogSources(NamedTuple):
    """Verilog text(s) and the name of their top module, as a factory may return them."""

    texts: Sequence[str]
    top: str


@dataclass(frozen=True)
class Design:
    """One entry of the registry.

    Parameters
    ----------
    name : str
        Registry name: used on the command line, for ``build/synth/<name>/`` and for the reports
        ``synth/reports/<name>.{json,md}``.
    factory : callable
        Called as ``factory(**params)``; returns a component, Verilog text(s) or
        :class:`VerilogSources` (see the module docstring).
    params : mapping
        Keyword arguments for ``factory``; recorded in the report.
    description : str
        One line for ``--list`` and the reports.
    top : str, optional
        Top module name; default ``name``.
    freq_mhz : float
        Place-and-route target frequency in MHz.
    """

    name: str
    factory: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    top: str | None = None
    freq_mhz: float = DEFAULT_FREQ_MHZ

    @property
    def top_name(self) -> str:
        """The top module name (``top``, or ``name`` when not given)."""
        return self.top or self.name

    def build(self) -> Any:
        """Call the factory with the entry's parameters and return what it returns."""
        return self.factory(**dict(self.params))


def _router(**params: Any) -> Any:
    from router import Router

    return Router(**params)


DESIGNS: dict[str, Design] = {
    d.name: d
    for d in [
        Design(
            name="router",
            factory=_router,
            params={"num_colors": 8, "queue_depth": 2},
            description="5-port colour router, 8 colours, 2-wavelet queue per (input, colour)",
        ),
    ]
}


def get(name: str) -> Design:
    """Return the design called ``name``.

    Raises
    ------
    UnknownDesignError
        If there is no such design; the message lists the known ones.
    """
    try:
        return DESIGNS[name]
    except KeyError:
        raise UnknownDesignError(
            f"unknown design {name!r}; known designs: {', '.join(DESIGNS)}"
        ) from None


def select(names: Sequence[str] | None) -> list[Design]:
    """Return the designs named in ``names`` (all of them when empty), in the order given.

    Names may also be comma-separated (``"router,pe"``); duplicates are dropped.

    Raises
    ------
    UnknownDesignError
        If a name is unknown; the message lists every unknown name and the known ones.
    """
    wanted: list[str] = []
    for item in names or []:
        for name in item.replace(",", " ").split():
            if name not in wanted:
                wanted.append(name)
    if not wanted:
        return list(DESIGNS.values())
    unknown = [n for n in wanted if n not in DESIGNS]
    if unknown:
        raise UnknownDesignError(
            f"unknown design{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known designs: {', '.join(DESIGNS)}"
        )
    return [DESIGNS[n] for n in wanted]
