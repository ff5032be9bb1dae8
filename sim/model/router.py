"""Golden model of the 5-port colour router (untimed).

Written from the routing rules, not from the RTL: a wavelet of colour ``c`` arriving on port ``p``
is delivered once to every port in ``tx[c]`` if ``p`` is in ``rx[c]`` (and ``tx[c]`` is not
empty), and is otherwise dropped and counted. Order is kept per (input port, colour) at every
output; how different (input, colour) flows interleave at an output depends on timing and
arbitration, so the model gives each output's traffic per flow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hdl.ports import NUM_PORTS
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
    """

    outputs: dict[int, dict[Flow, list[Wavelet]]] = field(default_factory=dict)
    dropped: int = 0

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
    for port, stream in inputs.items():
        if not 0 <= port < NUM_PORTS:
            raise ValueError(f"input port must be 0..{NUM_PORTS - 1}, not {port}")
        for w in stream:
            if not table.accepts(port, w.color):
                result.dropped += 1
                continue
            tx = table[w.color].tx
            for o in range(NUM_PORTS):
                if tx >> o & 1:
                    result.outputs[o][(port, w.color)].append(w)
    result.outputs = {o: dict(flows) for o, flows in result.outputs.items()}
    return result
