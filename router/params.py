"""The router's parameters, configuration address map and configuration words: defined once.

:class:`RouterParams` is used by the RTL (:class:`router.Router`), the fabric's parameters and
the golden models; :class:`RouteWord` (a route of one switch position) and :class:`SwitchWord`
(a colour's switch) are the words the RTL decodes and Python packs
(``RouteWord.const({...}).as_bits()``) and parses (``RouteWord.from_bits(word)``).
"""

from dataclasses import dataclass

from amaranth.lib import data, enum

from hdl.color_queue import MAX_QUEUE_DEPTH
from hdl.params import check_bool, check_int
from hdl.ports import NUM_PORTS
from hdl.wavelet import COLOR_BITS, check_num_colors

__all__ = ["RouterParams", "RouteWord", "PopMode", "SwitchWord", "RouterMap", "DEFAULT_COLORS",
           "NUM_POSITIONS", "MIN_QUEUE_DEPTH", "REGISTERED_MIN_DEPTH", "min_queue_depth"]

#: Routable colours by default: the WSE-2's 24.
DEFAULT_COLORS = 24
#: The least ``queue_depth``: two places sustain one wavelet per cycle per colour, as the
#: receiver's ``color_ready`` is registered.
MIN_QUEUE_DEPTH = 2
#: The least ``queue_depth`` with ``output_register``: one place per colour for the wavelet in
#: a neighbour's output register, and two that sustain one wavelet per cycle.
REGISTERED_MIN_DEPTH = MIN_QUEUE_DEPTH + 1


def min_queue_depth(output_register: bool) -> int:
    """The least ``queue_depth`` (wavelets) a router with or without registered outputs
    allows, which is also the depth the proofs and benches use by default."""
    return REGISTERED_MIN_DEPTH if output_register else MIN_QUEUE_DEPTH


@dataclass(frozen=True)
class RouterParams:
    """Parameters of a 5-port colour router.

    Attributes
    ----------
    num_colors : int
        Routable colours, 1 to 32 (default 24, as the WSE-2).
    queue_depth : int
        Wavelets per (input port, colour) queue, 2 to 16 (default 2, the least that sustains one
        wavelet per cycle per colour with a registered ``color_ready``).
    output_register : bool
        Register every output link (default ``False``): two cycles per hop instead of one, and
        no logic of the transmitter in the cycle that crosses a link. The mesh inputs then keep
        one place per colour for the wavelet in a neighbour's output register, so
        ``queue_depth`` must be at least 3 (one wavelet per cycle per colour). The trade-off
        is measured in ``docs/architecture.md``.

    Raises
    ------
    TypeError, ValueError
        For a value of the wrong type or outside its range (the message gives the range).
    """

    num_colors: int = DEFAULT_COLORS
    queue_depth: int = MIN_QUEUE_DEPTH
    output_register: bool = False

    def __post_init__(self):
        check_num_colors(self.num_colors)
        check_int("queue_depth", self.queue_depth, MIN_QUEUE_DEPTH, MAX_QUEUE_DEPTH,
                  f"wavelets ({MIN_QUEUE_DEPTH} is the least that sustains one wavelet per "
                  "cycle, as color_ready is registered)")
        if (check_bool("output_register", self.output_register)
                and self.queue_depth < REGISTERED_MIN_DEPTH):
            raise ValueError(
                f"output_register=True needs queue_depth >= {REGISTERED_MIN_DEPTH}, not "
                f"{self.queue_depth}: each "
                f"mesh input keeps one place per colour for the wavelet in its neighbour's "
                f"output register, and two more sustain one wavelet per cycle")

#: Switch positions of a colour: the default route (position 0) and pos1..pos3, as the WSE.
NUM_POSITIONS = 4


class RouteWord(data.Struct):
    """One colour's route at one switch position: accepted input ports and output ports (5-bit
    masks, bit ``i`` = port ``i`` of :mod:`hdl.ports`); more than one ``tx`` bit is a
    multicast."""

    rx: NUM_PORTS
    tx: NUM_PORTS


class PopMode(enum.Enum, shape=2):
    """When a router pops the switch command it applies from a control wavelet's list
    (:class:`hdl.wavelet.ControlWord`), as the SDK's ``pop_mode``: a command that is not popped
    is applied again by the next router."""

    #: Never: every router on the path applies the same command.
    NO_POP = 0
    #: Always.
    ALWAYS_POP = 1
    #: Only an ``ADVANCE``.
    POP_ON_ADVANCE = 2


class SwitchWord(data.Struct):
    """One colour's switch (configuration word ``RouterMap.SWITCHES + c``).

    Positions ``0 .. last`` are in use (``last = 0``: a static route). Writing the word puts the
    switch at ``start`` and ends a teardown; ``position`` and ``torn`` are read-only state.

    Members
    -------
    last : 2 bits
        The last position in use.
    ring : 1 bit
        Ring mode: ``ADVANCE`` from ``last`` wraps to position 0 (else it stays at ``last``).
    start : 2 bits
        The position the switch takes when this word is written (the SDK's
        ``current_switch_pos``).
    pop : :class:`PopMode`
    position : 2 bits
        Read only: the current position.
    torn : 1 bit
        Read only: the colour is torn down (a ``TEARDOWN`` command passed).
    """

    last: 2
    ring: 1
    start: 2
    pop: PopMode
    position: 2
    torn: 1


class RouterMap:
    """Word addresses of the router's configuration bus (``ADDR_WIDTH`` bits).

    ``ROUTES + POSITION_STRIDE * k + c`` (32 k + c) is colour ``c``'s :class:`RouteWord` at
    switch position ``k`` (:meth:`route`, :meth:`route_at`; position 0, the default route, at
    ``ROUTES + c``); ``SWITCHES + c`` is its
    :class:`SwitchWord`; ``STATUS`` reads the sticky, saturating 16-bit count of dropped
    wavelets and clears it when written. Write a colour's position 0 before its other positions:
    writing position 0 forgets the input ports the others accepted.
    """

    ADDR_WIDTH = 8
    ROUTES = 0x00
    #: Address distance between one switch position's routes and the next's: the address is
    #: ``{position, colour}`` (so the RTL decodes its low ``COLOR_BITS`` as the colour).
    POSITION_STRIDE = 1 << COLOR_BITS
    SWITCHES = 0x80
    STATUS = 0xC0

    @staticmethod
    def route(color: int, position: int = 0) -> int:
        """The address of colour ``color``'s route at switch ``position``."""
        return RouterMap.ROUTES + RouterMap.POSITION_STRIDE * position + color

    @staticmethod
    def route_at(addr: int, num_colors: int) -> tuple[int, int] | None:
        """``(color, position)`` of a route address (the inverse of :meth:`route`), or None if
        ``addr`` is not the route of one of ``num_colors`` colours."""
        if not RouterMap.ROUTES <= addr < RouterMap.SWITCHES:
            return None
        position, color = divmod(addr - RouterMap.ROUTES, RouterMap.POSITION_STRIDE)
        if position < NUM_POSITIONS and color < num_colors:
            return color, position
        return None

    @staticmethod
    def switch(color: int) -> int:
        """The address of colour ``color``'s :class:`SwitchWord`."""
        return RouterMap.SWITCHES + color

    @staticmethod
    def switch_at(addr: int, num_colors: int) -> int | None:
        """The colour whose :class:`SwitchWord` is at ``addr`` (the inverse of :meth:`switch`),
        or None if ``addr`` is not the switch word of one of ``num_colors`` colours."""
        color = addr - RouterMap.SWITCHES
        return color if 0 <= color < num_colors else None
