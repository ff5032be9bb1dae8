"""The wavelet, the fabric's flit, and the fabric link that carries it.

A wavelet is 38 bits: 32 data bits, a 5-bit colour and one control bit (``ctrl``), laid out
LSB first as ``data[31:0] | color[36:32] | ctrl[37]``. The Python-side packing used by the
golden models and benches is in :mod:`sim.wavelet` and follows the same layout.

A fabric link is a valid/ready stream of wavelets (:mod:`amaranth.lib.stream` rules) with one
addition, a per-colour ready vector ``color_ready``, which is how colours are kept from blocking
each other across a hop (the WSE's routers have per-colour flow control the same way):

* the receiver drives ``color_ready[c]`` high when it can accept a wavelet of colour ``c`` this
  cycle, from registered state only (never from ``valid`` or ``payload``), and drives
  ``ready = color_ready[payload.color]`` (colours at or above ``num_colors`` are accepted and
  dropped, so ``ready`` is high for them);
* a colour-aware transmitter (the router, the PE) asserts ``valid`` only for a colour whose
  ``color_ready`` bit is high, so every offer is taken in the cycle it is made and the stream rule
  "payload stays until transferred" holds trivially;
* a plain stream transmitter may ignore ``color_ready`` and wait for ``ready`` as usual: it then
  only blocks itself.
"""

from amaranth.hdl import Mux, unsigned
from amaranth.lib import data, enum
from amaranth.lib.wiring import In, Out

from .signature import ParamSignature

__all__ = [
    "DATA_BITS",
    "COLOR_BITS",
    "MAX_COLORS",
    "Wavelet",
    "SwitchCommand",
    "CONTROL_HOPS",
    "ControlWord",
    "COMMANDS_LSB",
    "SparseWord",
    "LinkSignature",
    "check_num_colors",
    "ready_at",
]

#: Width of a wavelet's data field, in bits.
DATA_BITS = 32
#: Width of a wavelet's colour field, in bits.
COLOR_BITS = 5
#: Largest number of colours a wavelet can name.
MAX_COLORS = 1 << COLOR_BITS


class Wavelet(data.Struct):
    """Layout of one wavelet (38 bits).

    Members
    -------
    data : unsigned(32)
        Payload: a 32-bit word, one element of a vector, or a sparse ``value[15:0] |
        index[31:16]`` pair.
    color : unsigned(5)
        Colour (the WSE's routing "virtual channel"); selects the route at every router and the
        task or input queue at the destination PE.
    ctrl : unsigned(1)
        Control wavelet flag: ``data`` is then a :class:`ControlWord`, whose switch commands
        the routers on the wavelet's path apply to its colour's switch.
    """

    data: unsigned(DATA_BITS)
    color: unsigned(COLOR_BITS)
    ctrl: unsigned(1)


class SwitchCommand(enum.Enum, shape=2):
    """A switch command of a control wavelet, as the Cerebras SDK's ``<control>`` library
    defines them (``SWITCH_NOP``, ``SWITCH_ADV``, ``SWITCH_RST``, ``SWITCH_TD``)."""

    #: Leave the colour's switch as it is.
    NOP = 0
    #: Move to the next switch position (from the last one: to position 0 in ring mode, else
    #: stay).
    ADVANCE = 1
    #: Back to position 0, the default route.
    RESET = 2
    #: Tear the colour down: the router forwards no more wavelets of it until its switch word is
    #: written again (the SDK's ``teardown.exit``).
    TEARDOWN = 3


#: Switch commands a control wavelet carries, one per router hop that pops one.
CONTROL_HOPS = 5


class ControlWord(data.Struct):
    """The data word of a control wavelet (``ctrl = 1``), 32 bits.

    After the Cerebras SDK's ``encode_single_payload`` / WSE-2 control wavelets: a list of
    switch commands for the routers on the path, and a control task with a 16-bit argument for
    the PEs that receive it. Every router a control wavelet passes applies ``commands[0]`` to
    the wavelet's colour once the wavelet has left it, and, if the colour's pop mode says so,
    *pops* it: the wavelet goes on with the list shifted by one (``NOP`` coming in at the end),
    so the next router applies the next command. Simplified from the WSE-2, whose list of eight
    commands overlaps the argument bits and has a per-hop task-enable bit.

    Members
    -------
    payload : unsigned(16)
        The control task's argument.
    task : unsigned(5)
        The control task the receiving PE starts (when ``no_task`` is clear).
    no_task : unsigned(1)
        Start no control task (the SDK's ``ce_ignore``).
    commands : array of 5 :class:`SwitchCommand`
        ``commands[0]`` is for the next router to apply.
    """

    payload: unsigned(16)
    task: unsigned(5)
    no_task: unsigned(1)
    commands: data.ArrayLayout(SwitchCommand, CONTROL_HOPS)


#: Bit of a control word where its switch commands start (``commands[0]``).
COMMANDS_LSB = ControlWord.as_shape()["commands"].offset


class SparseWord(data.Struct):
    """The data word of a *sparse* wavelet, 32 bits: a 16-bit value with its 16-bit index.

    The WSE's fabric carries a 16-bit value and a 16-bit index in one wavelet, so that a
    sparse vector travels as its nonzeros only, each with its position (Cerebras, "Harnessing
    the sparsity of neural networks", Hot Chips 2020). The PE's range filters
    (:class:`pe.isa.FilterWord`) select wavelets by ``index``; ``dindex`` sets a DSD's base
    from it (an indexed AXPY: ``docs/isa.md``); a 16-bit source format (BF16, FP16, INT16)
    reads ``value`` from a register holding the word (the low half).

    Members
    -------
    value : unsigned(16)
        The element, in the kernel's 16-bit format.
    index : unsigned(16)
        Its position (the wavelet's upper half).
    """

    value: unsigned(16)
    index: unsigned(16)


def check_num_colors(num_colors: int) -> int:
    """Validate a ``num_colors`` parameter.

    Raises
    ------
    TypeError
        If ``num_colors`` is not an integer.
    ValueError
        If ``num_colors`` is outside ``1 .. 32`` (the colour field is 5 bits wide).
    """
    if not isinstance(num_colors, int) or isinstance(num_colors, bool):
        raise TypeError(f"num_colors must be an integer, not {num_colors!r}")
    if not 1 <= num_colors <= MAX_COLORS:
        raise ValueError(
            f"num_colors must be between 1 and {MAX_COLORS} (the wavelet colour field is "
            f"{COLOR_BITS} bits), not {num_colors}"
        )
    return num_colors


def ready_at(bits, color, num_colors: int):
    """A link's ``ready`` from a per-colour vector: ``bits[color]``, and 1 for a colour at or
    above ``num_colors`` (no queue: accepted and dropped, the link rule above).

    Parameters
    ----------
    bits : Value of width ``num_colors``
        Room per colour (``color_ready`` or the room there is now).
    color : Value of width :data:`COLOR_BITS`
        The offered wavelet's colour.
    """
    if num_colors < 1 << COLOR_BITS:
        return Mux(color < num_colors, bits.bit_select(color, 1), 1)
    return bits.bit_select(color, 1)


class LinkSignature(ParamSignature):
    """Signature of one direction of a fabric link (transmitter's view).

    Parameters
    ----------
    num_colors : int
        Number of colours with their own flow control (1 to 32).

    Members
    -------
    payload : ``Out(Wavelet)``
        The wavelet on offer.
    valid : ``Out(1)``
        A wavelet is on offer.
    ready : ``In(1)``
        The wavelet on offer is accepted (``color_ready[payload.color]`` at the receiver).
    color_ready : ``In(num_colors)``
        Bit ``c`` is high when the receiver can accept a wavelet of colour ``c`` this cycle.
        Driven from the receiver's registered state only.
    """

    PARAMS = ("num_colors",)

    def __init__(self, num_colors: int):
        self.num_colors = check_num_colors(num_colors)
        super().__init__(
            {
                "payload": Out(Wavelet),
                "valid": Out(1),
                "ready": In(1),
                "color_ready": In(num_colors),
            }
        )
