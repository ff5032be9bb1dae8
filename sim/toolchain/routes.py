"""Per-colour route tables: the data the router hardware reads, built and checked in Python.

A route for colour ``c`` is a pair of 5-bit port masks: ``rx`` (the input ports whose wavelets of
colour ``c`` are accepted) and ``tx`` (the output ports they are sent to; several bits =
multicast). Port bits follow :mod:`hdl.ports` (N=0, E=1, S=2, W=3, RAMP=4). The configuration
word of a route is :class:`router.params.RouteWord`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hdl.ports import NUM_PORTS, OPPOSITE, PORT_NAMES, RAMP, E, N, S, W, mask_of
from router.params import RouteWord

__all__ = ["Route", "RouteTable", "RouteCycleError", "find_route_cycle", "check_acyclic"]


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


@dataclass
class RouteTable:
    """The route table of one router: a :class:`Route` per colour.

    Parameters
    ----------
    num_colors : int
        Number of colours of the router (1 to 32).
    routes : dict[int, Route]
        Routes by colour; missing colours have the empty route (every wavelet dropped).

    Raises
    ------
    ValueError
        If a colour is out of range.
    """

    num_colors: int
    routes: dict[int, Route] = field(default_factory=dict)

    def __post_init__(self):
        if not 1 <= self.num_colors <= 32:
            raise ValueError(f"num_colors must be between 1 and 32, not {self.num_colors}")
        for c in self.routes:
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

    def __getitem__(self, color: int) -> Route:
        self._check_color(color)
        return self.routes.get(color, Route())

    def accepts(self, port: int, color: int) -> bool:
        """Whether a wavelet of ``color`` arriving on ``port`` is routed (not dropped)."""
        if not 0 <= color < self.num_colors:
            return False
        r = self[color]
        return bool(r.rx >> port & 1) and r.tx != 0

    def words(self) -> list[int]:
        """Configuration words for colours ``0 .. num_colors-1``."""
        return [self[c].word() for c in range(self.num_colors)]

    @classmethod
    def from_words(cls, words: list[int]) -> RouteTable:
        """Decode a route table read back from a router."""
        return cls(len(words), {c: Route.from_word(w) for c, w in enumerate(words) if w})

    def __str__(self):
        lines = [f"colour {c:2d}: {self[c]}" for c in range(self.num_colors) if self[c] != Route()]
        return "\n".join(lines) if lines else "(no routes)"


class RouteCycleError(ValueError):
    """Route tables that send a colour around a loop (see :func:`check_acyclic`).

    Attributes
    ----------
    color : int
    hops : list of (row, col, in_port, out_port)
        The loop, one entry per router on it, port names as in :mod:`hdl.ports`.
    """

    def __init__(self, color: int, hops: list[tuple[int, int, str, str]]):
        self.color, self.hops = color, hops
        path = " -> ".join(f"({r}, {c}) in {i.upper()} out {o.upper()}" for r, c, i, o in hops)
        first = hops[0]
        super().__init__(
            f"colour {color} has a routing loop: {path} -> ({first[0]}, {first[1]}); a wavelet "
            f"of this colour would circulate forever. Remove one of these hops from the route "
            f"tables.")


_STEP = {N: (-1, 0), S: (1, 0), W: (0, -1), E: (0, 1)}


def find_route_cycle(tables: Mapping[tuple[int, int], RouteTable], rows: int, cols: int):
    """The first routing loop in a logical ``rows × cols`` array, or ``None``.

    A wavelet of colour ``c`` arriving at router ``(r, c)`` on port ``p`` that the route accepts
    goes to every port of ``tx``; the neighbours' input ports are followed (the RAMP and the
    array's edges end a path). Routers without a table drop everything.

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
            tx = tables[r, c][color].tx
            for o in range(NUM_PORTS):
                if o == RAMP or not tx >> o & 1:
                    continue
                dr, dc = _STEP[o]
                nr, nc = r + dr, c + dc
                if 0 <= nr < rows and 0 <= nc < cols and accepts(nr, nc, OPPOSITE[o]):
                    yield o, (nr, nc, OPPOSITE[o])

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
                    hops = [(n[0][0], n[0][1], PORT_NAMES[n[0][2]], PORT_NAMES[n[1]])
                            for n in on_loop]
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
