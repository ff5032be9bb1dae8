"""Golden model of a whole logical fabric: router models and PE models on an R × C mesh.

Built from the block golden models (:mod:`sim.toolchain.routes` route tables with the routing
rule of :mod:`sim.model.router`, and :class:`sim.model.pe.PEModel`), independently of the RTL. It
models the *logical* array only: the contract of redundancy is that a repaired fabric behaves
exactly like a defect-free one, so the golden model has no spares.

Untimed dataflow: queues are unbounded, routers move every waiting wavelet to all of its route's
outputs, PEs run until they wait; repeated until nothing moves. For a program whose results do
not depend on timing (no races between tasks), this gives the results of the RTL bit for bit.
Configuration uses the tile address map of the RTL (:mod:`sim.host.packets`).

Switches (:mod:`sim.model.switch`) are modelled per (tile, colour): a wavelet waits in its input
queue while the current switch position does not accept its port, and a control wavelet moves
the switch once it has left. Colours that have no switch and see no control wavelet take a fast
path with cached route decisions.

A round visits the routers in row-major order (a wavelet sent east or south may go on in the
same round, one sent north or west waits for the next), then runs the PEs. Only routers with
waiting wavelets are visited and only PEs that have been given wavelets (every PE in a run's
first round) are run: the others would do nothing. Each router's route decisions are kept per
(input port, colour) until its table changes.
"""

from __future__ import annotations

import heapq
from collections import deque

from fabric.tile import TileMap
from hdl.ports import NUM_PORTS, OPPOSITE, RAMP, E, N, S, W
from router.params import RouterMap, SwitchWord
from sim.model.pe import PEModel, PEParams
from sim.model.switch import SwitchState
from sim.model.wavelet import Wavelet
from sim.toolchain.routes import Route, RouteTable, Switch

__all__ = ["FabricModel", "EDGE_PORT"]

#: The router port of an edge tile that a host edge port connects to.
EDGE_PORT = {"n": N, "s": S, "w": W, "e": E}
_TO_PE, _TO_TILE, _TO_HOST = range(3)  # kinds of route target (see FabricModel._targets)


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
        # Per tile: (input port, colour) -> where the route sends it (see _targets), and the
        # route table contents those decisions were made from.
        self._targets_of: list[dict] = [{} for _ in range(rows * cols)]
        self._made_from: list[tuple | None] = [None] * (rows * cols)
        # Per tile: colour -> SwitchState, for colours with a switch or that saw a control
        # wavelet; and the words written to switch positions 1.. ((colour, position) -> Route).
        self._switch_of: list[dict[int, SwitchState]] = [{} for _ in range(rows * cols)]
        self._table_of: list[int | None] = [None] * (rows * cols)
        self._position_words: list[dict[tuple[int, int], Route]] = [{} for _ in range(rows * cols)]

    # ---- configuration -----------------------------------------------------------------------
    def _router_word(self, row: int, col: int, addr: int):
        """A router address of the tile map, decoded: the tile's index, its route table, the
        ``(colour, position)`` of a route word (or None), the colour of a switch word (or None)
        and whether it is the status word."""
        local = addr - TileMap.ROUTER
        return (row * self.cols + col, self.routes[row][col],
                RouterMap.route_at(local, self.num_colors),
                RouterMap.switch_at(local, self.num_colors), local == RouterMap.STATUS)

    def cfg_write(self, row: int, col: int, addr: int, value: int) -> None:
        """Write one tile configuration word (tile address map)."""
        if addr >= TileMap.ROUTER:
            t, table, at, switch_color, status = self._router_word(row, col, addr)
            if at is not None:
                color, position = at
                route = Route.from_word(value)
                if position:
                    self._position_words[t][color, position] = route
                elif route == Route():
                    table.routes.pop(color, None)
                else:
                    table.routes[color] = route
                self._targets_of[t] = {}
            elif switch_color is not None:
                color = switch_color
                word = SwitchWord.from_bits(value & ((1 << SwitchWord.as_shape().size) - 1))
                if word.last:
                    table.switches[color] = Switch(
                        tuple(self._position_words[t].get((color, k), Route())
                              for k in range(1, word.last + 1)),
                        ring=bool(word.ring), start=word.start, pop=word.pop)
                else:
                    table.switches.pop(color, None)
                self._switch_of[t].pop(color, None)  # back at the start, not torn down
                self._targets_of[t] = {}
            elif status:
                self.dropped[row][col] = 0
        else:
            self.pes[row][col].cfg_write(addr, value)

    def cfg_write_block(self, row: int, col: int, addr: int, values) -> None:
        """Write consecutive tile configuration words from ``addr`` (as :meth:`cfg_write` of
        each; a PE's SRAM and program runs as arrays)."""
        if addr >= TileMap.ROUTER or addr + len(values) > TileMap.ROUTER:
            for k, value in enumerate(values):
                self.cfg_write(row, col, addr + k, int(value))
        else:
            self.pes[row][col].cfg_write_block(addr, values)

    def cfg_read(self, row: int, col: int, addr: int) -> int:
        """Read one tile configuration word."""
        if addr >= TileMap.ROUTER:
            t, table, at, color, status = self._router_word(row, col, addr)
            if at is not None:
                color, position = at
                if position:
                    return self._position_words[t].get((color, position), Route()).word()
                return table[color].word()
            if color is not None:
                switch = table.switches.get(color)
                state = self._switch_of[t].get(color) or SwitchState(table, color)
                word = switch.word() if switch else 0
                return word | SwitchWord.const({"position": state.position,
                                                "torn": int(state.torn)}).as_bits()
            if status:
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

    def _targets(self, t: int, port: int, color: int) -> tuple | None:
        """Where router ``t`` (row-major index) sends a wavelet of ``color`` arriving on
        ``port`` by its static route: ``None`` if it drops it, else :meth:`_targets_of_tx`."""
        r, c = divmod(t, self.cols)
        table = self.routes[r][c]
        if not table.accepts(port, color):
            return None
        return self._targets_of_tx(t, table[color].tx)

    def _targets_of_tx(self, t: int, tx: int) -> tuple:
        """Per output port of ``tx`` in order, ``(_TO_PE, pe, t)``, ``(_TO_TILE, input deque,
        tile)`` of a neighbour or ``(_TO_HOST, host port key, -1)``."""
        r, c = divmod(t, self.cols)
        out = []
        for o in range(NUM_PORTS):
            if not tx >> o & 1:
                continue
            if o == RAMP:
                out.append((_TO_PE, self.pes[r][c], t))
                continue
            dr, dc = {N: (-1, 0), S: (1, 0), W: (0, -1), E: (0, 1)}[o]
            nr, nc = r + dr, c + dc
            if 0 <= nr < self.rows and 0 <= nc < self.cols:
                out.append((_TO_TILE, self.inputs[nr][nc][OPPOSITE[o]], nr * self.cols + nc))
            else:
                edge = {N: "n", S: "s", W: "w", E: "e"}[o]
                out.append((_TO_HOST, (edge, c if edge in ("n", "s") else r), -1))
        return tuple(out)

    def _check_targets(self) -> None:
        """Forget the route decisions of routers whose table (or PE) changed since they were
        made (also by a direct edit of :attr:`routes` or :attr:`pes`), and the switch state of
        routers given a new table object."""
        for t in range(self.rows * self.cols):
            r, c = divmod(t, self.cols)
            table = self.routes[r][c]
            made_from = (table.num_colors, dict(table.routes), dict(table.switches),
                         id(self.pes[r][c]))
            if self._made_from[t] != made_from:
                self._made_from[t] = made_from
                self._targets_of[t] = {}
            if self._table_of[t] != id(table):
                self._table_of[t] = id(table)
                self._switch_of[t] = {}

    def _deliver(self, t: int, w: Wavelet, targets, later, queued, next_round, woken) -> None:
        for kind, where, to in targets:
            if kind == _TO_PE:
                where.push_wavelet(w.color, w.data, w.ctrl)
                woken.add(t)
            elif kind == _TO_TILE:
                where.append(w)
                if to < t:
                    next_round.add(to)
                elif to not in queued:
                    queued.add(to)
                    heapq.heappush(later, to)
            else:
                self.host_out.setdefault(where, []).append(w)

    def _route_tile(self, t: int, later: list[int], queued: set[int], next_round: set[int],
                    woken: set[int]) -> bool:
        """Move every wavelet that can leave router ``t``; neighbours given wavelets are added
        to this round's heap ``later`` (``queued`` holds its tiles) if they come after ``t``,
        else to ``next_round``; PEs given wavelets to ``woken``. Returns whether anything
        moved."""
        r, c = divmod(t, self.cols)
        pe = self.pes[r][c]
        table = self.routes[r][c]
        inputs = self.inputs[r][c]
        sent = self.sent[r][c]
        if len(pe.outbox) > sent:
            inputs[RAMP].extend(Wavelet(d, col, k) for col, d, k in pe.outbox[sent:])
            self.sent[r][c] = len(pe.outbox)
        decisions = self._targets_of[t]
        switches = self._switch_of[t]
        args = (later, queued, next_round, woken)
        moved = False
        switched = True
        while switched:  # a switch that moved may let wavelets waiting on other ports go
            switched = False
            for p in range(NUM_PORTS):
                q = inputs[p]
                waiting, waiting_colors = [], set()
                while q:
                    w = q.popleft()
                    color = w.color
                    if color in waiting_colors:  # behind a wavelet of its colour that waits
                        waiting.append(w)
                        continue
                    state = switches.get(color)
                    if state is None and (w.ctrl or color in table.switches) \
                            and 0 <= color < self.num_colors:
                        state = switches[color] = SwitchState(table, color)
                    if state is None:  # a static route: the cached decision
                        moved = True
                        key = (p, color)
                        if key in decisions:
                            targets = decisions[key]
                        else:
                            targets = decisions[key] = self._targets(t, p, color)
                        if targets is None:
                            self.dropped[r][c] += 1
                        else:
                            self._deliver(t, w, targets, *args)
                        continue
                    if not table.accepts(p, color):
                        moved = True
                        self.dropped[r][c] += 1
                        continue
                    route = state.route
                    if not (route.rx >> p & 1 and route.tx):
                        waiting.append(w)
                        waiting_colors.add(color)
                        continue
                    moved = True
                    before = (state.position, state.torn)
                    w = state.forward(w)
                    switched |= (state.position, state.torn) != before
                    self._deliver(t, w, self._targets_of_tx(t, route.tx), *args)
                q.extend(waiting)
        return moved

    def run(self, max_rounds: int = 1_000_000) -> int:
        """Move wavelets and run PEs until nothing changes; returns the rounds taken.

        Raises
        ------
        RuntimeError
            If the fabric is still active after ``max_rounds`` rounds.
        """
        self._check_targets()
        tiles = range(self.rows * self.cols)
        flat = [pe for row in self.pes for pe in row]
        to_route = {t for t in tiles
                    if any(self.inputs[t // self.cols][t % self.cols])
                    or len(flat[t].outbox) > self.sent[t // self.cols][t % self.cols]}
        to_run = set(tiles)  # the first round runs every PE: the host may have started them
        for rounds in range(max_rounds):
            moved = False
            later = sorted(to_route)
            queued, next_round, woken = set(later), set(), set()
            while later:
                moved |= self._route_tile(heapq.heappop(later), later, queued, next_round, woken)
            to_run |= woken
            for t in sorted(to_run):
                pe = flat[t]
                moved |= pe.run()
                if len(pe.outbox) > self.sent[t // self.cols][t % self.cols]:
                    next_round.add(t)
            if not moved:
                return rounds
            to_route, to_run = next_round, set()
        raise RuntimeError(f"the golden fabric was still active after {max_rounds} rounds")

    def take(self, edge: str, index: int) -> list[Wavelet]:
        """Remove and return what left the array at a host edge port."""
        return self.host_out.pop((edge, index), [])

    def busy_tiles(self) -> list[tuple[int, int]]:
        """Logical tiles whose PE is not idle or whose router holds wavelets."""
        return [(r, c) for r in range(self.rows) for c in range(self.cols)
                if not self.pes[r][c].idle or any(self.inputs[r][c])]
