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

A design that may not fit the device can name a ``fallback``: parameter overrides for a smaller
variant of the same factory. When the design does not fit, the flow still reports its synthesis
area and then synthesises, places and routes the variant, and reports the variant's Fmax as such
(never as the design's own).
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
    fallback : mapping, optional
        Parameter overrides (applied to ``params``) for a smaller variant that is placed and
        routed instead when the design does not fit the device; its Fmax is reported labelled
        as the variant's.
    fallback_note : str
        Why the variant stands for the design (goes into the report).
    pnr_args : sequence of str
        Extra nextpnr-ecp5 arguments (recorded in the report).
    fallback_pnr_args : sequence of str
        Extra nextpnr-ecp5 arguments for the variant.
    pnr_timeout_s, fallback_pnr_timeout_s : float, optional
        Limit in seconds for nextpnr on the design / its variant (the smaller of this and
        ``--timeout`` applies); a run that hits it is reported as timed out.
    default : bool
        Part of a plain ``make synth`` (default); ``False`` for a trade-off variant that runs
        only when named (``make synth-variants``).
    """

    name: str
    factory: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    top: str | None = None
    freq_mhz: float = DEFAULT_FREQ_MHZ
    fallback: Mapping[str, Any] | None = None
    fallback_note: str = ""
    pnr_args: Sequence[str] = ()
    fallback_pnr_args: Sequence[str] = ()
    pnr_timeout_s: float | None = None
    fallback_pnr_timeout_s: float | None = None
    default: bool = True

    @property
    def top_name(self) -> str:
        """The top module name (``top``, or ``name`` when not given)."""
        return self.top or self.name

    def build(self) -> Any:
        """Call the factory with the entry's parameters and return what it returns."""
        return self.factory(**dict(self.params))

    def fallback_design(self) -> Design | None:
        """The smaller variant (``params`` updated with ``fallback``), or ``None``."""
        if self.fallback is None:
            return None
        params = {**self.params, **self.fallback}
        return Design(name=f"{self.name}_fallback", factory=self.factory, params=params,
                      description=f"smaller variant of {self.name}", freq_mhz=self.freq_mhz,
                      pnr_args=tuple(self.fallback_pnr_args),
                      pnr_timeout_s=self.fallback_pnr_timeout_s)


def _router(**params: Any) -> Any:
    from router import Router

    return Router(**params)


def _pe(**params: Any) -> Any:
    from pe.pe import PE

    return PE(**params)


def _tile(**params: Any) -> Any:
    from fabric.tile import Tile

    return Tile(**params)


def _fabric(**params: Any) -> VerilogSources:
    from fabric.array import FabricParams, emit_verilog

    fp = FabricParams(**params)
    return VerilogSources(emit_verilog(fp), fp.name())


DESIGNS: dict[str, Design] = {
    d.name: d
    for d in [
        Design(
            name="router",
            factory=_router,
            params={"num_colors": 24, "queue_depth": 2},
            description="5-port colour router, 24 colours, 2-wavelet queue per (input, colour)",
        ),
        Design(
            name="pe",
            factory=_pe,
            params={"sram_words": 1024, "imem_words": 256, "num_colors": 24, "num_tasks": 32,
                    "num_dsds": 16, "in_depth": 3},
            description="processing element: task engine, DSD vector unit with FPU, 4 KiB SRAM "
                        "bank (2 read ports), 1 KiB program memory, 24 colours",
        ),
        Design(
            name="tile",
            factory=_tile,
            params={"spares": 1, "num_colors": 24, "queue_depth": 2, "sram_words": 1024,
                    "imem_words": 256, "num_tasks": 32, "num_dsds": 16, "in_depth": 3,
                    "fault_injection": False},
            description="one physical tile: router + PE + configuration station + bypass "
                        "shell, 24 colours",
        ),
        Design(
            name="fabric2x2",
            factory=_fabric,
            params={"rows": 2, "cols": 2, "spares": 1, "num_colors": 24, "queue_depth": 2,
                    "sram_words": 1024, "imem_words": 256, "num_tasks": 32, "num_dsds": 16,
                    "in_depth": 3, "fault_injection": False},
            description="2 x 2 logical fabric with 1 spare column: 2 x 3 physical tiles "
                        "(wafer_tile instantiated by name)",
            # The 2 x 3 physical array maps to 68.5k LUT4 + 4.3k CCU2C + 1.3k DPR16X4, which
            # nextpnr packs into 87,090 logic cells of the device's 83,640 (4 % over), so one
            # row of two tiles is what is placed for an Fmax.
            fallback={"rows": 1, "cols": 1},
            fallback_note="one logical row and column with the same spare column, i.e. 1 x 2 "
                          "physical tiles with exactly the same tile parameters; it has every "
                          "path inside a tile and the E/W links between neighbouring tiles "
                          "(through a shell's bypass), but its N/S ports are host ports, so "
                          "the (2S+1):1 vertical selects between rows of the 2 x 2 fabric are "
                          "not timed. Whatever this variant gives, the fabric's Fmax is at most "
                          "the single tile's (see tile.md): every tile-internal path is also in "
                          "the fabric",
            # router2 (nextpnr's router for congested designs) and a cap keep `make synth`
            # bounded: the 8-colour tiles of an earlier RTL filled 61 % of the device in this
            # variant and did not route in 50 min; when the cap is hit the report says so.
            fallback_pnr_args=("--router", "router2"),
            fallback_pnr_timeout_s=1800,
        ),
        # Trade-off variants (docs/architecture.md, "Registered outputs"): not in a plain
        # `make synth`; `make synth-variants` runs them.
        Design(
            name="tile_outreg",
            factory=_tile,
            params={"spares": 1, "num_colors": 24, "queue_depth": 3, "sram_words": 1024,
                    "imem_words": 256, "num_tasks": 32, "num_dsds": 16, "in_depth": 3,
                    "output_register": True, "fault_injection": False},
            description="the tile with registered router outputs (two cycles per hop; "
                        "3-wavelet queues keep one wavelet per cycle per colour)",
            default=False,
        ),
        Design(
            name="fabric1x1_outreg",
            factory=_fabric,
            params={"rows": 1, "cols": 1, "spares": 1, "num_colors": 24, "queue_depth": 3,
                    "sram_words": 1024, "imem_words": 256, "num_tasks": 32, "num_dsds": 16,
                    "in_depth": 3, "output_register": True, "fault_injection": False},
            description="1 x 2 physical tiles (the fabric2x2 variant that is placed) with "
                        "registered router outputs: the E/W link between the tiles",
            pnr_args=("--router", "router2"),
            pnr_timeout_s=1800,
            default=False,
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
        return [d for d in DESIGNS.values() if d.default]
    unknown = [n for n in wanted if n not in DESIGNS]
    if unknown:
        raise UnknownDesignError(
            f"unknown design{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known designs: {', '.join(DESIGNS)}"
        )
    return [DESIGNS[n] for n in wanted]
