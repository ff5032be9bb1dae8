"""The router's parameters, configuration address map and route-table word: defined once.

:class:`RouterParams` is used by the RTL (:class:`router.Router`), the fabric's parameters and
the golden models; :class:`RouteWord` is the route-table word the RTL decodes and Python packs
(``RouteWord.const({...}).as_bits()``) and parses (``RouteWord.from_bits(word)``).
"""

from dataclasses import dataclass

from amaranth.lib import data

from hdl.color_queue import MAX_QUEUE_DEPTH
from hdl.params import check_int
from hdl.ports import NUM_PORTS
from hdl.wavelet import check_num_colors

__all__ = ["RouterParams", "RouteWord", "RouterMap", "DEFAULT_COLORS"]

#: Routable colours by default: the WSE-2's 24.
DEFAULT_COLORS = 24

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

    Raises
    ------
    TypeError, ValueError
        For a value of the wrong type or outside its range (the message gives the range).
    """

    num_colors: int = DEFAULT_COLORS
    queue_depth: int = 2

    def __post_init__(self):
        check_num_colors(self.num_colors)
        check_int("queue_depth", self.queue_depth, 2, MAX_QUEUE_DEPTH,
                  "wavelets (2 is the least that sustains one wavelet per cycle, as "
                  "color_ready is registered)")

class RouteWord(data.Struct):
    """One colour's route-table word: accepted input ports and output ports (5-bit masks, bit
    ``i`` = port ``i`` of :mod:`hdl.ports`); more than one ``tx`` bit is a multicast."""

    rx: NUM_PORTS
    tx: NUM_PORTS

class RouterMap:
    """Word addresses of the router's configuration bus (``ADDR_WIDTH`` bits).

    ``ROUTES + c`` is colour ``c``'s :class:`RouteWord`; ``STATUS`` reads the sticky,
    saturating 16-bit count of dropped wavelets and clears it when written.
    """

    ADDR_WIDTH = 7
    ROUTES = 0x00
    STATUS = 0x40
