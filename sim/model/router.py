"""Golden model of the 5-port colour router (untimed).

Written from the routing rules, not from the RTL: a wavelet of colour ``c`` arriving on port ``p``
is kept if some switch position of ``c`` accepts ``p`` (with an output), and is otherwise dropped
and counted. A kept wavelet is delivered once to every port in the ``tx`` of the current switch
position, once that position accepts ``p`` (:mod:`sim.model.switch`); control wavelets move the
switch as they leave. Order is kept per (input port, colour) at every output; how different
(input, colour) flows interleave at an output depends on timing and arbitration, so the model
gives each output's traffic per flow. When one position accepts several ports and a control
wavelet comes through one of them, how many of the others' wavelets go before the switch moves
depends on timing too: the model takes the lowest port's wavelets first, so traffic meant to be
checked against it feeds a switched colour from one port per position.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hdl.ports import NUM_PORTS
from sim.model.switch import SwitchState
from sim.model.wavelet import Wavelet
from sim.toolchain.routes import RouteTable

__all__ = ["RouterResult", "route_streams"]

Flow = tuple[int, int]  # (input port, colour)


@dataclass
class RouterResult:
    """What the router must deliver.

    Attributes
    ----------
    outputs : dict[int, dict[(int, int), list[Wavelet]]]
        For each output port, the wavelets of each (input port, colour) flow, in order.
    dropped : int
        Number of wavelets dropped (unrouted).
    waiting : dict[(int, int), list[Wavelet]]
        Wavelets kept but never sent, per flow: their switch never accepted their port again,
        or the colour was torn down.
    positions : dict[int, (int, bool)]
        Each switched colour's final switch position and whether it is torn down.
    """

    outputs: dict[int, dict[Flow, list[Wavelet]]] = field(default_factory=dict)
    dropped: int = 0
    waiting: dict[Flow, list[Wavelet]] = field(default_factory=dict)
    positions: dict[int, tuple[int, bool]] = field(default_factory=dict)

    def count(self, port: int) -> int:
        """Total number of wavelets output ``port`` must carry."""
        return sum(len(v) for v in self.outputs.get(port, {}).values())


def route_streams(table: RouteTable, inputs: Mapping[int, Sequence[Wavelet]]) -> RouterResult:
    """Route per-input wavelet streams through one router.

    Parameters
    ----------
    table : RouteTable
        The router's route table.
    inputs : mapping of input port to sequence of :class:`~sim.model.wavelet.Wavelet`
        What arrives on each input port, in order.

    Returns
    -------
    RouterResult
        Per output port and flow, the wavelets it must carry; and the drop count.

    Raises
    ------
    ValueError
        If a port index is out of range.
    """
    result = RouterResult({o: defaultdict(list) for o in range(NUM_PORTS)})
    queues: dict[int, dict[int, deque]] = defaultdict(lambda: defaultdict(deque))
    for port, stream in inputs.items():
        if not 0 <= port < NUM_PORTS:
            raise ValueError(f"input port must be 0..{NUM_PORTS - 1}, not {port}")
        for w in stream:
            if table.accepts(port, w.color):
                queues[w.color][port].append(w)
            else:
                result.dropped += 1
    for color, ports in sorted(queues.items()):
        switch = SwitchState(table, color)
        while True:
            route = switch.route
            port = next((p for p in range(NUM_PORTS) if route.rx >> p & 1 and ports[p]), None)
            if port is None or not route.tx:
                break
            w = switch.forward(ports[port].popleft())
            for o in range(NUM_PORTS):
                if route.tx >> o & 1:
                    result.outputs[o][(port, color)].append(w)
        result.waiting.update({(p, color): list(q) for p, q in ports.items() if q})
        if color in table.switches:
            result.positions[color] = (switch.position, switch.torn)
    result.outputs = {o: dict(flows) for o, flows in result.outputs.items()}
    return result
