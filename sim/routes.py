"""Per-colour route tables: the data the router hardware reads, built and checked in Python.

A route for colour ``c`` is a pair of 5-bit port masks: ``rx`` (the input ports whose wavelets of
colour ``c`` are accepted) and ``tx`` (the output ports they are sent to; several bits =
multicast). Port bits follow :mod:`hdl.ports` (N=0, E=1, S=2, W=3, RAMP=4). The configuration
word of a route is ``rx | tx << 5`` (see :class:`router.Router`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hdl.ports import NUM_PORTS, PORT_NAMES, mask_of

__all__ = ["Route", "RouteTable"]


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
        """The router configuration word ``rx | tx << 5``."""
        return self.rx | self.tx << 5

    @classmethod
    def from_word(cls, word: int) -> Route:
        """Decode a router configuration word."""
        return cls(word & 0x1F, (word >> 5) & 0x1F)

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
