"""Per-colour route tables: the data the router hardware reads, built and checked in Python.

A route for colour ``c`` is a pair of 5-bit port masks: ``rx`` (the input ports whose wavelets of
colour ``c`` are accepted) and ``tx`` (the output ports they are sent to; several bits =
multicast). Port bits follow :mod:`hdl.ports` (N=0, E=1, S=2, W=3, RAMP=4). The configuration
word of a route is :class:`router.params.RouteWord`.

A colour may also have a :class:`Switch`: routes for switch positions 1 to 3 besides its route
(position 0), a ring mode, a start position and a pop mode, as the WSE's fabric switches;
control wavelets move it between positions (:class:`hdl.wavelet.SwitchCommand`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hdl.ports import NUM_PORTS, OPPOSITE, PORT_NAMES, RAMP, E, N, S, W, mask_of
from router.params import NUM_POSITIONS, PopMode, RouterMap, RouteWord, SwitchWord

__all__ = ["Route", "Switch", "RouteTable", "RouteCycleError", "find_route_cycle",
           "check_acyclic"]


def _mask_names(mask: int) -> str:
    names = [PORT_NAMES[i].upper() for i in range(NUM_PORTS) if mask >> i & 1]
    return "{" + ",".join(names) + "}"


@dataclass(frozen=True)
class Route:
    """One colour's route: accepted inputs ``rx`` and outputs ``tx``, as 5-bit port masks."""

    rx: int = 0
    tx: int = 0

    def __post_init__(self):
        for name, value in (("rx", self.rx), ("tx", self.tx)):
            if not isinstance(value, int) or not 0 <= value < 1 << NUM_PORTS:
                raise ValueError(f"route {name} must be a 5-bit port mask, not {value!r}")

    @classmethod
    def of(cls, rx: Iterable[str | int], tx: Iterable[str | int]) -> Route:
        """Build a route from port names or indices, e.g. ``Route.of(["w"], ["e", "ramp"])``."""
        return cls(mask_of(rx), mask_of(tx))

    def word(self) -> int:
        """The router's configuration word (:class:`router.params.RouteWord`)."""
        return RouteWord.const({"rx": self.rx, "tx": self.tx}).as_bits()

    @classmethod
    def from_word(cls, word: int) -> Route:
        """Decode a router configuration word (:class:`router.params.RouteWord`)."""
        w = RouteWord.from_bits(int(word) & ((1 << RouteWord.as_shape().size) - 1))
        return cls(w.rx, w.tx)

    def __str__(self):
        return f"{_mask_names(self.rx)} -> {_mask_names(self.tx)}"


def _as_route(value) -> Route:
    if isinstance(value, Route):
        return value
    try:
        rx, tx = value
    except (TypeError, ValueError):
        raise ValueError(f"a switch position must be a Route or an (rx, tx) pair of port "
                         f"lists, not {value!r}") from None
    return Route.of(rx, tx)


@dataclass(frozen=True)
class Switch:
    """A colour's fabric switch: the routes of positions 1 to ``len(positions)`` (position 0 is
    the colour's route in the :class:`RouteTable`), as the Cerebras SDK's ``.switches`` of a
    colour configuration.

    Attributes
    ----------
    positions : tuple of Route
        Routes of positions 1, 2, 3 (1 to ``NUM_POSITIONS - 1`` of them); a position routes the
        whole ``rx``/``tx`` pair (where the SDK lets a position give only ``rx`` or ``tx``, copy
        the other from position 0).
    ring : bool
        ``ADVANCE`` from the last position wraps to position 0 (else the switch stays there).
    start : int
        The position the switch takes when it is configured (the SDK's ``current_switch_pos``).
    pop : PopMode
        When a router pops the command it applies from a control wavelet.

    Raises
    ------
    ValueError
        For no positions or too many, a start position that is not in use, or a bad pop mode.
    """

    positions: tuple = ()
    ring: bool = False
    start: int = 0
    pop: PopMode = PopMode.NO_POP

    def __post_init__(self):
        positions = tuple(_as_route(p) for p in self.positions)
        object.__setattr__(self, "positions", positions)
        if not 1 <= len(positions) < NUM_POSITIONS:
            raise ValueError(f"a switch has 1 to {NUM_POSITIONS - 1} positions besides the "
                             f"default route, not {len(positions)}")
        if not isinstance(self.start, int) or not 0 <= self.start <= len(positions):
            raise ValueError(f"switch start position must be 0..{len(positions)} (the positions "
                             f"in use), not {self.start!r}")
        try:
            object.__setattr__(self, "pop", PopMode(self.pop))
        except ValueError:
            raise ValueError(f"pop mode must be one of {[m.name for m in PopMode]}, not "
                             f"{self.pop!r}") from None

    @property
    def last(self) -> int:
        """The last position in use."""
        return len(self.positions)

    def word(self) -> int:
        """The router's switch word (:class:`router.params.SwitchWord`)."""
        return SwitchWord.const({"last": self.last, "ring": int(self.ring), "start": self.start,
                                 "pop": self.pop}).as_bits()


@dataclass
class RouteTable:
    """The route table of one router: a :class:`Route` per colour.

    Parameters
    ----------
    num_colors : int
        Number of colours of the router (1 to 32).
    routes : dict[int, Route]
        Routes by colour (switch position 0); missing colours have the empty route (every
        wavelet dropped).
    switches : dict[int, Switch]
        Switches by colour; a colour without one has a static route.

    Raises
    ------
    ValueError
        If a colour is out of range.
    """

    num_colors: int
    routes: dict[int, Route] = field(default_factory=dict)
    switches: dict[int, Switch] = field(default_factory=dict)

    def __post_init__(self):
        if not 1 <= self.num_colors <= 32:
            raise ValueError(f"num_colors must be between 1 and 32, not {self.num_colors}")
        for c in (*self.routes, *self.switches):
            self._check_color(c)

    def _check_color(self, color: int) -> None:
        if not isinstance(color, int) or not 0 <= color < self.num_colors:
            raise ValueError(
                f"colour {color!r} is out of range: this router has colours "
                f"0..{self.num_colors - 1}"
            )

    def set(self, color: int, rx: Iterable[str | int], tx: Iterable[str | int]) -> RouteTable:
        """Set the route of ``color`` from port names; returns ``self`` for chaining."""
        self._check_color(color)
        self.routes[color] = Route.of(rx, tx)
        return self

    def set_switch(self, color: int, positions, *, ring: bool = False, start: int = 0,
                   pop: PopMode = PopMode.NO_POP) -> RouteTable:
        """Give ``color`` a :class:`Switch` (``positions``: Routes or ``(rx, tx)`` pairs of port
        names for positions 1..); returns ``self`` for chaining."""
        self._check_color(color)
        self.switches[color] = Switch(tuple(positions), ring=ring, start=start, pop=pop)
        return self

    def __getitem__(self, color: int) -> Route:
        self._check_color(color)
        return self.routes.get(color, Route())

    def positions(self, color: int) -> list[Route]:
        """The routes of every switch position of ``color`` in use (position 0 first)."""
        switch = self.switches.get(color)
        return [self[color], *(switch.positions if switch else ())]

    def start(self, color: int) -> int:
        """The switch position ``color`` starts in."""
        switch = self.switches.get(color)
        return switch.start if switch else 0

    def accepts(self, port: int, color: int) -> bool:
        """Whether a wavelet of ``color`` arriving on ``port`` is kept (not dropped): some
        switch position with an output accepts the port. It leaves when the current position
        does."""
        if not 0 <= color < self.num_colors:
            return False
        return any(r.rx >> port & 1 and r.tx for r in self.positions(color))

    def words(self) -> list[int]:
        """Route words (switch position 0) for colours ``0 .. num_colors-1``."""
        return [self[c].word() for c in range(self.num_colors)]

    def config_blocks(self, *, only_used: bool = False) -> list[tuple[int, list[int]]]:
        """The router configuration writes that load this table, as ``(router word address,
        words)`` blocks (:class:`router.params.RouterMap`): every colour's position 0, then the
        other positions in use, then every colour's switch word (a colour without a switch gets
        the static one), in that order, as the RTL requires (a colour's switch word after its
        routes).

        With ``only_used``, only the colours with a route or a switch, in runs of consecutive
        colours: for a router already loaded with the empty table (``RouteTable(n)
        .config_blocks()``, which the host broadcasts to every router), this leaves the same
        state in fewer words."""
        used = [c for c in range(self.num_colors)
                if not only_used or self[c].word() or c in self.switches]
        runs = []  # (first colour, last colour + 1) of consecutive used colours
        for c in used:
            if runs and runs[-1][1] == c:
                runs[-1][1] = c + 1
            else:
                runs.append([c, c + 1])
        words = self.words()
        switch_words = [self.switches[c].word() if c in self.switches else 0
                        for c in range(self.num_colors)]
        blocks = [(RouterMap.route(a), words[a:b]) for a, b in runs]
        for c, switch in sorted(self.switches.items()):
            for k, route in enumerate(switch.positions, 1):
                blocks.append((RouterMap.route(c, k), [route.word()]))
        blocks += [(RouterMap.switch(a), switch_words[a:b]) for a, b in runs]
        return blocks

    @classmethod
    def from_words(cls, words: list[int]) -> RouteTable:
        """Decode a route table (position 0 of each colour) read back from a router."""
        return cls(len(words), {c: Route.from_word(w) for c, w in enumerate(words) if w})

    def __str__(self):
        lines = []
        for c in range(self.num_colors):
            switch = self.switches.get(c)
            if self[c] == Route() and switch is None:
                continue
            if switch is None:
                lines.append(f"colour {c:2d}: {self[c]}")
                continue
            mode = ", ring" if switch.ring else ""
            lines.append(f"colour {c:2d}: switch (start {switch.start}{mode}, "
                         f"{switch.pop.name.lower()})")
            for k, route in enumerate(self.positions(c)):
                lines.append(f"    pos{k}: {route}")
        return "\n".join(lines) if lines else "(no routes)"


class RouteCycleError(ValueError):
    """Route tables that send a colour around a loop (see :func:`check_acyclic`).

    Attributes
    ----------
    color : int
    hops : list of (row, col, in_port, out_port, position)
        The loop, one entry per router on it, port names as in :mod:`hdl.ports`, and the switch
        position whose route takes the hop (0 for a static route).
    """

    def __init__(self, color: int, hops: list[tuple[int, int, str, str, int]]):
        self.color, self.hops = color, hops
        path = " -> ".join(f"({r}, {c}) in {i.upper()} out {o.upper()}"
                           + (f" at pos{k}" if k else "") for r, c, i, o, k in hops)
        first = hops[0]
        super().__init__(
            f"colour {color} has a routing loop: {path} -> ({first[0]}, {first[1]}); a wavelet "
            f"of this colour would circulate forever. Remove one of these hops from the route "
            f"tables (every switch position counts: routers switch independently).")


_STEP = {N: (-1, 0), S: (1, 0), W: (0, -1), E: (0, 1)}


def find_route_cycle(tables: Mapping[tuple[int, int], RouteTable], rows: int, cols: int):
    """The first routing loop in a logical ``rows × cols`` array, or ``None``.

    A wavelet of colour ``c`` arriving at router ``(r, c)`` on port ``p`` that the route accepts
    goes to every port of ``tx``; the neighbours' input ports are followed (the RAMP and the
    array's edges end a path). Routers without a table drop everything. Every switch position
    counts, since each router's switch moves on its own: a loop that goes through a position of
    one router and another position of the next is a loop.

    Returns
    -------
    (color, hops) or None
        ``hops`` as in :class:`RouteCycleError`.
    """
    colors = max((t.num_colors for t in tables.values()), default=0)
    for color in range(colors):
        def accepts(r, c, p, color=color):
            table = tables.get((r, c))
            return table is not None and table.accepts(p, color)

        def successors(node, color=color):
            r, c, p = node
            for k, route in enumerate(tables[r, c].positions(color)):
                if not route.rx >> p & 1:
                    continue
                for o in range(NUM_PORTS):
                    if o == RAMP or not route.tx >> o & 1:
                        continue
                    dr, dc = _STEP[o]
                    nr, nc = r + dr, c + dc
                    if 0 <= nr < rows and 0 <= nc < cols and accepts(nr, nc, OPPOSITE[o]):
                        yield (o, k), (nr, nc, OPPOSITE[o])

        state: dict[tuple[int, int, int], int] = {}  # 1 on the DFS stack, 2 done
        for start in ((r, c, p) for (r, c) in sorted(tables) for p in range(NUM_PORTS)
                      if 0 <= r < rows and 0 <= c < cols and accepts(r, c, p)):
            if start in state:
                continue
            stack = [(start, None, successors(start))]  # node, out port taken, iterator
            state[start] = 1
            while stack:
                node, _, it = stack[-1]
                step = next(it, None)
                if step is None:
                    state[node] = 2
                    stack.pop()
                    continue
                out_port, nxt = step
                stack[-1] = (node, out_port, it)
                if state.get(nxt) == 1:
                    on_loop = stack[[s[0] for s in stack].index(nxt):]
                    hops = [(n[0][0], n[0][1], PORT_NAMES[n[0][2]], PORT_NAMES[n[1][0]],
                             n[1][1]) for n in on_loop]
                    return color, hops
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, None, successors(nxt)))
    return None


def check_acyclic(tables: Mapping[tuple[int, int], RouteTable], rows: int, cols: int) -> None:
    """Refuse route tables with a routing loop.

    Parameters
    ----------
    tables : mapping (row, col) -> RouteTable
        Route tables of a logical ``rows × cols`` array; missing routers drop everything.

    Raises
    ------
    RouteCycleError
        Naming the colour and the routers and ports on the loop.
    """
    found = find_route_cycle(tables, rows, cols)
    if found is not None:
        raise RouteCycleError(*found)
