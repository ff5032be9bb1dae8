"""Golden model of a whole logical fabric: router models and PE models on an R × C mesh.

Built from the block golden models (:mod:`sim.toolchain.routes` route tables with the routing
rule of :mod:`sim.model.router`, and :class:`sim.model.pe.PEModel`), independently of the RTL. It
models the *logical* array only: the contract of redundancy is that a repaired fabric behaves
exactly like a defect-free one, so the golden model has no spares.

Untimed dataflow: queues are unbounded, routers move every waiting wavelet to all of its route's
outputs, PEs run until they wait; repeated until nothing moves. For a program whose results do
not depend on timing (no races between tasks), this gives the results of the RTL bit for bit.
Configuration uses the tile address map of the RTL (:mod:`sim.host.packets`).
"""

from __future__ import annotations

from collections import deque

from hdl.ports import NUM_PORTS, OPPOSITE, RAMP, E, N, S, W
from sim.host.packets import ROUTER_BASE
from sim.model.pe import PEModel, PEParams
from sim.model.wavelet import Wavelet
from sim.toolchain.routes import Route, RouteTable

__all__ = ["FabricModel", "EDGE_PORT"]

#: The router port of an edge tile that a host edge port connects to.
EDGE_PORT = {"n": N, "s": S, "w": W, "e": E}
_STATUS = 0x40


class FabricModel:
    """Logical fabric of ``rows × cols`` tiles.

    Parameters
    ----------
    rows, cols : int
    pe_params : PEParams
    num_colors : int

    Attributes
    ----------
    routes : list[list[RouteTable]]
    pes : list[list[PEModel]]
    dropped : list[list[int]]
        Wavelets dropped per router.
    host_out : dict[(edge, index), list[Wavelet]]
        Wavelets that left the array at each host edge port.
    """

    def __init__(self, rows: int, cols: int, pe_params: PEParams, num_colors: int):
        self.rows, self.cols = rows, cols
        self.num_colors = num_colors
        self.routes = [[RouteTable(num_colors) for _ in range(cols)] for _ in range(rows)]
        self.pes = [[PEModel(pe_params) for _ in range(cols)] for _ in range(rows)]
        self.inputs = [[[deque() for _ in range(NUM_PORTS)] for _ in range(cols)]
                       for _ in range(rows)]
        self.dropped = [[0] * cols for _ in range(rows)]
        self.sent = [[0] * cols for _ in range(rows)]  # outbox entries already routed
        self.host_out: dict[tuple[str, int], list[Wavelet]] = {}

    # ---- configuration -----------------------------------------------------------------------
    def cfg_write(self, row: int, col: int, addr: int, value: int) -> None:
        """Write one tile configuration word (tile address map)."""
        if addr >= ROUTER_BASE:
            local = addr - ROUTER_BASE
            if local < self.num_colors:
                table = self.routes[row][col]
                route = Route.from_word(value)
                if route == Route():
                    table.routes.pop(local, None)
                else:
                    table.routes[local] = route
            elif local == _STATUS:
                self.dropped[row][col] = 0
        else:
            self.pes[row][col].cfg_write(addr, value)

    def cfg_read(self, row: int, col: int, addr: int) -> int:
        """Read one tile configuration word."""
        if addr >= ROUTER_BASE:
            local = addr - ROUTER_BASE
            if local < self.num_colors:
                return self.routes[row][col][local].word()
            if local == _STATUS:
                return min(self.dropped[row][col], 0xFFFF)
            return 0
        return self.pes[row][col].cfg_read(addr)

    # ---- traffic -----------------------------------------------------------------------------
    def send(self, edge: str, index: int, wavelets) -> None:
        """Host wavelets into edge port ``edge`` (n, s, w, e) of logical column / row ``index``."""
        r, c = self._edge_tile(edge, index)
        self.inputs[r][c][EDGE_PORT[edge]].extend(wavelets)

    def _edge_tile(self, edge: str, index: int) -> tuple[int, int]:
        if edge in ("n", "s"):
            if not 0 <= index < self.cols:
                raise ValueError(f"edge port {edge}{index}: the array has {self.cols} columns")
            return (0 if edge == "n" else self.rows - 1), index
        if edge in ("w", "e"):
            if not 0 <= index < self.rows:
                raise ValueError(f"edge port {edge}{index}: the array has {self.rows} rows")
            return index, (0 if edge == "w" else self.cols - 1)
        raise ValueError(f"unknown edge {edge!r}; the edges are n, s, w, e")

    def _deliver(self, r: int, c: int, port: int, w: Wavelet) -> None:
        if port == RAMP:
            self.pes[r][c].push_wavelet(w.color, w.data)
            return
        dr, dc = {N: (-1, 0), S: (1, 0), W: (0, -1), E: (0, 1)}[port]
        nr, nc = r + dr, c + dc
        if 0 <= nr < self.rows and 0 <= nc < self.cols:
            self.inputs[nr][nc][OPPOSITE[port]].append(w)
            return
        edge = {N: "n", S: "s", W: "w", E: "e"}[port]
        index = c if edge in ("n", "s") else r
        self.host_out.setdefault((edge, index), []).append(w)

    def _route_all(self) -> bool:
        moved = False
        for r in range(self.rows):
            for c in range(self.cols):
                pe = self.pes[r][c]
                fresh = pe.outbox[self.sent[r][c]:]
                if fresh:
                    self.inputs[r][c][RAMP].extend(Wavelet(d, col) for col, d in fresh)
                    self.sent[r][c] = len(pe.outbox)
                table = self.routes[r][c]
                for p in range(NUM_PORTS):
                    q = self.inputs[r][c][p]
                    while q:
                        w = q.popleft()
                        moved = True
                        if not table.accepts(p, w.color):
                            self.dropped[r][c] += 1
                            continue
                        tx = table[w.color].tx
                        for o in range(NUM_PORTS):
                            if tx >> o & 1:
                                self._deliver(r, c, o, w)
        return moved

    def run(self, max_rounds: int = 1_000_000) -> int:
        """Move wavelets and run PEs until nothing changes; returns the rounds taken.

        Raises
        ------
        RuntimeError
            If the fabric is still active after ``max_rounds`` rounds.
        """
        for rounds in range(max_rounds):
            moved = self._route_all()
            for row in self.pes:
                for pe in row:
                    moved |= pe.run()
            if not moved:
                return rounds
        raise RuntimeError(f"the golden fabric was still active after {max_rounds} rounds")

    def take(self, edge: str, index: int) -> list[Wavelet]:
        """Remove and return what left the array at a host edge port."""
        return self.host_out.pop((edge, index), [])

    def busy_tiles(self) -> list[tuple[int, int]]:
        """Logical tiles whose PE is not idle or whose router holds wavelets."""
        return [(r, c) for r in range(self.rows) for c in range(self.cols)
                if not self.pes[r][c].idle or any(self.inputs[r][c])]
