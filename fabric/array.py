"""The physical tile array: ``rows × (cols + spares)`` tiles, wired as a mesh with bypass.

The tile is emitted once as the Verilog module ``wafer_tile`` and instantiated by name
(:class:`~amaranth.hdl.Instance`) for every position, so a bigger fabric costs only its instance
list and wiring — in Amaranth, yosys and Verilator alike (``docs/architecture.md``).

Wiring:

* **E/W**: physical neighbours are joined directly; a disabled tile passes E/W traffic through
  (inside its shell), so a row's enabled tiles see each other as neighbours.
* **N/S**: a tile takes its vertical neighbour from the ``2·spares + 1`` tiles around its own
  column in the next row, chosen by its ``sel_n`` / ``sel_s`` (data from the neighbour, ready
  back to it) — the ``(2S+1):1`` multiplexers that shift around a dead tile, as in the WSE.
* **Edges**: the logical array's edge ports are the fabric's host ports: ``n{j}_*`` / ``s{j}_*``
  for logical column ``j``, ``w{i}_*`` / ``e{i}_*`` for row ``i``. ``*_in`` carries wavelets
  into the fabric, ``*_out`` out of it. A north/south host port sits at virtual position ``j``
  of the row above/below, and the tile that holds logical column ``j`` selects it.
* **Configuration chain**: serpentine through every physical tile (row 0 west to east, row 1
  east to west, ...), from ``chain_in`` to ``chain_out``.
* **Status**: ``idle`` (every tile idle), ``error`` (some tile's error), ``tile_idle`` (one bit
  per physical tile, row-major) for reporting which tiles are still busy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, ResetSignal, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.refused import mark_unused
from hdl.wavelet import LinkSignature
from pe.params import PEParams
from router.params import REGISTERED_MIN_DEPTH, RouterParams

from .repair import MAX_SPARES
from .tile import Tile

__all__ = ["FabricParams", "Fabric", "TILE_MODULE", "emit_verilog", "chain_order",
           "registered_outputs"]

TILE_MODULE = "wafer_tile"


@dataclass(frozen=True)
class FabricParams:
    """Parameters of a fabric.

    Attributes
    ----------
    rows, cols : int
        Logical array (1 to 255 rows; ``cols + spares`` at most 255).
    spares : int
        Spare columns, 0 to 7 (default 1).
    num_colors, queue_depth, output_register
        Router parameters, defaults from :class:`router.params.RouterParams` (24 colours,
        depth 2, outputs not registered: one cycle per hop).
    sram_words, imem_words, num_tasks, num_dsds, in_depth
        PE parameters (``sram_words`` in 32-bit words), defaults from
        :class:`pe.params.PEParams`.
    fault_injection : bool
        Build the fault-injection inputs (simulation only).

    Raises
    ------
    ValueError, TypeError
        From :meth:`validate`, with the legal range.
    """

    rows: int = 2
    cols: int = 2
    spares: int = 1
    num_colors: int = RouterParams.num_colors
    queue_depth: int = RouterParams.queue_depth
    sram_words: int = PEParams.sram_words
    imem_words: int = PEParams.imem_words
    num_tasks: int = PEParams.num_tasks
    num_dsds: int = PEParams.num_dsds
    in_depth: int = PEParams.in_depth
    output_register: bool = RouterParams.output_register
    fault_injection: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        for name in ("rows", "cols", "spares"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if not 1 <= self.rows <= 255:
            raise ValueError(f"rows must be between 1 and 255, not {self.rows}")
        if not 0 <= self.spares <= MAX_SPARES:
            raise ValueError(f"spares must be between 0 and {MAX_SPARES}, not {self.spares}")
        if not 1 <= self.cols <= 255 - self.spares:
            raise ValueError(
                f"cols must be between 1 and {255 - self.spares} (cols + spares <= 255 physical "
                f"columns), not {self.cols}")
        _unused(Tile(**self.tile_kwargs()))  # validates the router and PE parameters

    @property
    def physical_cols(self) -> int:
        return self.cols + self.spares

    def tile_kwargs(self) -> dict:
        d = asdict(self)
        for key in ("rows", "cols"):
            d.pop(key)
        return d

    def tile(self) -> Tile:
        return Tile(**self.tile_kwargs())

    def pe_params(self) -> PEParams:
        """The PEs' :class:`pe.params.PEParams` (the RTL's and the golden model's)."""
        return PEParams(sram_words=self.sram_words, imem_words=self.imem_words,
                        num_colors=self.num_colors, num_tasks=self.num_tasks,
                        num_dsds=self.num_dsds, in_depth=self.in_depth,
                        in_flight=int(self.output_register))

    def name(self) -> str:
        """A short identifier, e.g. ``fabric_2x2s1_c8_m1024``."""
        return (f"fabric_{self.rows}x{self.cols}s{self.spares}_c{self.num_colors}"
                f"_m{self.sram_words}{'_or' if self.output_register else ''}"
                f"{'_fi' if self.fault_injection else ''}")


def registered_outputs() -> dict:
    """The parameters that turn on registered router outputs, for :class:`FabricParams` or
    :class:`fabric.tile.Tile` keyword arguments: ``output_register`` with the least queue
    depths it allows (:data:`router.params.REGISTERED_MIN_DEPTH` for the routers' queues and
    for the PEs' input queues, which keep the same place for the wavelet in flight)."""
    return {"output_register": True, "queue_depth": REGISTERED_MIN_DEPTH,
            "in_depth": REGISTERED_MIN_DEPTH}


def _unused(tile: Tile) -> Tile:
    """Mark a tile (and its blocks) as deliberately not elaborated (silences Amaranth's
    UnusedElaboratable warning for objects built only to validate or to read a signature)."""
    mark_unused(tile, tile.router, tile.pe)
    return tile


def chain_order(rows: int, physical_cols: int) -> list[tuple[int, int]]:
    """Physical tiles in configuration-chain order (serpentine)."""
    order = []
    for r in range(rows):
        cols = range(physical_cols) if r % 2 == 0 else reversed(range(physical_cols))
        order += [(r, p) for p in cols]
    return order


class Fabric(wiring.Component):
    """The fabric top level: tile instances, mesh and bypass wiring, host ports.

    Parameters
    ----------
    params : FabricParams

    Members
    -------
    n{j}_in, s{j}_in : ``In(LinkSignature)``, j < cols
        Host wavelets into the north / south edge of logical column ``j``.
    n{j}_out, s{j}_out : ``Out(LinkSignature)``
        Wavelets leaving the north / south edge.
    w{i}_in, e{i}_in, w{i}_out, e{i}_out : i < rows
        The same for the west and east edges of logical row ``i``.
    chain_in : ``In(stream.Signature(32))``
    chain_out : ``Out(stream.Signature(32))``
    idle, error : ``Out(1)``
    tile_idle : ``Out(rows * (cols + spares))``
        Bit ``r * (cols + spares) + p``: physical tile ``(r, p)`` is idle.
    fault_modes : ``In(2 * rows * (cols + spares))``, only with ``fault_injection``
        Two bits per physical tile (same order), see :class:`fabric.tile.Tile`.
    """

    def __init__(self, params: FabricParams):
        self.params = params
        C, R, P = params.cols, params.rows, params.physical_cols
        link = LinkSignature(params.num_colors)
        members = {}
        for j in range(C):
            for edge in ("n", "s"):
                members[f"{edge}{j}_in"] = In(link)
                members[f"{edge}{j}_out"] = Out(link)
        for i in range(R):
            for edge in ("w", "e"):
                members[f"{edge}{i}_in"] = In(link)
                members[f"{edge}{i}_out"] = Out(link)
        members.update({
            "chain_in": In(stream.Signature(32)),
            "chain_out": Out(stream.Signature(32)),
            "idle": Out(1),
            "error": Out(1),
            "tile_idle": Out(R * P),
        })
        if params.fault_injection:
            members["fault_modes"] = In(2 * R * P)
        super().__init__(members)

    def host(self, edge: str, index: int, direction: str):
        """The host port interface ``{edge}{index}_{direction}``."""
        return getattr(self, f"{edge}{index}_{direction}")

    def elaborate(self, platform):
        m = Module()
        prm = self.params
        R, C, P, S = prm.rows, prm.cols, prm.physical_cols, prm.spares
        template = _unused(prm.tile())  # only its signature is used here

        # One instance per physical tile; its ports become plain signals t{r}_{p}__<port>.
        tiles: dict[tuple[int, int], dict[str, Signal]] = {}
        for r in range(R):
            for p in range(P):
                ports, conns = {}, {}
                for path, member, value in template.signature.flatten(template):
                    name = "__".join(str(x) for x in path)
                    sig = Signal(len(Value.cast(value)), name=f"t{r}_{p}__{name}")
                    ports[name] = sig
                    conns[("i_" if member.flow == In else "o_") + name] = sig
                m.submodules[f"tile_{r}_{p}"] = Instance(
                    TILE_MODULE, i_clk=ClockSignal(), i_rst=ResetSignal(), **conns)
                m.d.comb += [ports["row"].eq(r), ports["col"].eq(p)]
                if prm.fault_injection:
                    k = 2 * (r * P + p)
                    m.d.comb += ports["fault_mode"].eq(self.fault_modes[k:k + 2])
                tiles[r, p] = ports

        def port(tile, name):
            return {f: tile[f"{name}__{f}"] for f in ("payload", "valid", "ready", "color_ready")}

        def host(edge, index, direction):
            iface = self.host(edge, index, direction)
            return {"payload": iface.payload.as_value(), "valid": iface.valid,
                    "ready": iface.ready, "color_ready": iface.color_ready}

        def join(tx, rx):
            """Connect a transmitter's link to a receiver's."""
            m.d.comb += [rx["payload"].eq(tx["payload"]), rx["valid"].eq(tx["valid"]),
                         tx["ready"].eq(rx["ready"]), tx["color_ready"].eq(rx["color_ready"])]

        # ---- E/W: straight neighbours; host ports at the row ends -----------------------------
        for r in range(R):
            for p in range(P - 1):
                join(port(tiles[r, p], "out_e"), port(tiles[r, p + 1], "in_w"))
                join(port(tiles[r, p + 1], "out_w"), port(tiles[r, p], "in_e"))
            join(host("w", r, "in"), port(tiles[r, 0], "in_w"))
            join(port(tiles[r, 0], "out_w"), host("w", r, "out"))
            join(host("e", r, "in"), port(tiles[r, P - 1], "in_e"))
            join(port(tiles[r, P - 1], "out_e"), host("e", r, "out"))

        # ---- N/S: (2S+1):1 selection of the vertical neighbour --------------------------------
        def neighbour(r, q, side):
            """(transmitter, receiver) links at position q of the row on ``side`` of row r."""
            row = r - 1 if side == "n" else r + 1
            facing = "s" if side == "n" else "n"
            if 0 <= row < R:
                if 0 <= q < P:
                    return port(tiles[row, q], f"out_{facing}"), port(tiles[row, q], f"in_{facing}")
                return None
            if 0 <= q < C:
                return host(side, q, "in"), host(side, q, "out")
            return None

        for (r, p), t in tiles.items():
            for side in ("n", "s"):
                sel = t[f"sel_{side}"]
                rx, tx = port(t, f"in_{side}"), port(t, f"out_{side}")
                with m.Switch(sel):
                    for k in range(2 * S + 1):
                        found = neighbour(r, p - S + k, side)
                        if found is None:
                            continue
                        other_tx, other_rx = found
                        with m.Case(k):
                            m.d.comb += [
                                rx["payload"].eq(other_tx["payload"]),
                                rx["valid"].eq(other_tx["valid"]),
                                tx["ready"].eq(other_rx["ready"]),
                                tx["color_ready"].eq(other_rx["color_ready"]),
                            ]

        # Host N/S ports: driven by (and ready from) the edge-row tile that selects them.
        for side, r in (("n", 0), ("s", R - 1)):
            for j in range(C):
                into, out_of = host(side, j, "in"), host(side, j, "out")
                terms = []
                for p in range(max(0, j - S), min(P, j + S + 1)):
                    t = tiles[r, p]
                    hit = Signal(name=f"host_{side}{j}_at_{p}")
                    m.d.comb += hit.eq(t["enabled"] & (t[f"sel_{side}"] == j - p + S))
                    terms.append((hit, t))
                for field, source, target in (("payload", "out", out_of), ("valid", "out", out_of),
                                              ("ready", "in", into),
                                              ("color_ready", "in", into)):
                    value = Const(0, len(target[field]))
                    for hit, t in terms:
                        value = value | (t[f"{source}_{side}__{field}"] & hit.replicate(
                            len(target[field])))
                    m.d.comb += target[field].eq(value)

        # ---- configuration chain --------------------------------------------------------------
        order = chain_order(R, P)
        upstream = {"payload": self.chain_in.payload, "valid": self.chain_in.valid,
                    "ready": self.chain_in.ready}
        for r, p in order:
            t = tiles[r, p]
            m.d.comb += [t["chain_in__payload"].eq(upstream["payload"]),
                         t["chain_in__valid"].eq(upstream["valid"]),
                         upstream["ready"].eq(t["chain_in__ready"])]
            upstream = {"payload": t["chain_out__payload"], "valid": t["chain_out__valid"],
                        "ready": t["chain_out__ready"]}
        m.d.comb += [self.chain_out.payload.eq(upstream["payload"]),
                     self.chain_out.valid.eq(upstream["valid"]),
                     upstream["ready"].eq(self.chain_out.ready)]

        # ---- status ---------------------------------------------------------------------------
        idle_bits = [tiles[r, p]["idle"] for r in range(R) for p in range(P)]
        m.d.comb += [
            self.tile_idle.eq(Value.cast(idle_bits[0]) if len(idle_bits) == 1
                              else Cat(*idle_bits)),
            self.idle.eq(self.tile_idle.all()),
            self.error.eq(Cat(*(tiles[r, p]["error"] for r in range(R)
                                for p in range(P))).any()),
        ]
        return m


def emit_verilog(params: FabricParams, top: str | None = None) -> list[str]:
    """Verilog of a fabric: ``[tile module, top module]``.

    Parameters
    ----------
    params : FabricParams
    top : str, optional
        Name of the top module (default :meth:`FabricParams.name`).
    """
    from amaranth.back import verilog

    tile_v = verilog.convert(params.tile(), name=TILE_MODULE, emit_src=False)
    top_v = verilog.convert(Fabric(params), name=top or params.name(), emit_src=False)
    return [tile_v, top_v]
