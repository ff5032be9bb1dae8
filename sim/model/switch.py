"""Golden model of one colour's fabric switch at one router.

Written from the Cerebras SDK's description of switches, not from the RTL: a colour has routes
for positions ``0 .. last`` (:meth:`sim.toolchain.routes.RouteTable.positions`) and starts at its
start position. A wavelet of the colour leaves the router by the route of the current position,
and only from an input port that position accepts (the others wait). A control wavelet
(``ctrl = 1``, data a :class:`hdl.wavelet.ControlWord`) is forwarded like any wavelet, and once
it has left, the router applies the first command of its list to the colour:

* ``ADVANCE``: to the next position; from ``last``, to 0 in ring mode, else stay;
* ``RESET``: to position 0;
* ``TEARDOWN``: the colour stops; nothing more of it leaves until the switch is configured again;
* ``NOP``: nothing.

The wavelet goes on with that command popped (the list shifted by one, ``NOP`` coming in at the
end) if the colour's pop mode is ``ALWAYS_POP``, or ``POP_ON_ADVANCE`` and the command was
``ADVANCE``.
"""

from __future__ import annotations

from hdl.wavelet import COMMANDS_LSB, CONTROL_HOPS, SwitchCommand
from router.params import PopMode
from sim.model.wavelet import Wavelet
from sim.toolchain.routes import Route, RouteTable

__all__ = ["SwitchState", "commands_of", "with_commands"]

_CMD_BITS = SwitchCommand.as_shape().width
_DATA_MASK = (1 << COMMANDS_LSB) - 1


def commands_of(data: int) -> list[SwitchCommand]:
    """The switch commands of a control wavelet's data word, first first."""
    return [SwitchCommand((data >> (COMMANDS_LSB + _CMD_BITS * i)) & ((1 << _CMD_BITS) - 1))
            for i in range(CONTROL_HOPS)]


def with_commands(data: int, commands: list[SwitchCommand]) -> int:
    """``data`` with its switch-command list replaced by ``commands`` (padded with ``NOP``)."""
    out = data & _DATA_MASK
    for i, cmd in enumerate(commands[:CONTROL_HOPS]):
        out |= SwitchCommand(cmd).value << (COMMANDS_LSB + _CMD_BITS * i)
    return out


class SwitchState:
    """The switch of colour ``color`` at a router with route table ``table``.

    Attributes
    ----------
    position : int
        Current switch position.
    torn : bool
        The colour was torn down.
    """

    def __init__(self, table: RouteTable, color: int):
        self.table, self.color = table, color
        self.position = table.start(color)
        self.torn = False

    @property
    def route(self) -> Route:
        """The route of the current position (empty while torn down)."""
        if self.torn:
            return Route()
        return self.table.positions(self.color)[self.position]

    def forward(self, w: Wavelet) -> Wavelet:
        """Let ``w`` leave by the current route; returns the wavelet as it leaves (a control
        wavelet with its command popped if the pop mode says so) and applies its command."""
        if not w.ctrl:
            return w
        commands = commands_of(w.data)
        cmd = commands[0]
        switch = self.table.switches.get(self.color)
        pop = switch.pop if switch else PopMode.NO_POP
        if pop == PopMode.ALWAYS_POP or (pop == PopMode.POP_ON_ADVANCE
                                         and cmd == SwitchCommand.ADVANCE):
            w = w._replace(data=with_commands(w.data, commands[1:]))
        last = len(self.table.positions(self.color)) - 1
        if cmd == SwitchCommand.ADVANCE:
            if self.position < last:
                self.position += 1
            elif switch is not None and switch.ring:
                self.position = 0
        elif cmd == SwitchCommand.RESET:
            self.position = 0
        elif cmd == SwitchCommand.TEARDOWN:
            self.torn = True
        return w
