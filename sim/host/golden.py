"""The golden backend of the host driver: configuration-chain packets applied to the golden
fabric model (:mod:`sim.model.fabric`), which runs untimed."""

from __future__ import annotations

import numpy as np

from fabric.array import FabricParams
from fabric.repair import RepairMap
from sim.host.errors import DriverError
from sim.host.packets import Command, decode_header, header
from sim.model.fabric import FabricModel
from sim.model.wavelet import Wavelet

__all__ = ["GoldenBackend"]


def _as_array(words: list[int]) -> np.ndarray:
    """Chain words as an int64 array (reduced to 32 bits if a word does not fit in 63)."""
    try:
        return np.asarray(words, dtype=np.int64)
    except OverflowError:
        return np.asarray([w & 0xFFFF_FFFF for w in words], dtype=np.int64)


class GoldenBackend:
    """Applies chain packets to the golden model; runs it untimed.

    Parameters
    ----------
    params : FabricParams
    rmap : RepairMap
        Where each logical tile sits; packets address physical tiles. The driver replaces it
        when it repairs the fabric for a new defect map.
    """

    def __init__(self, params: FabricParams, rmap: RepairMap):
        self.params, self.rmap = params, rmap
        self.model = FabricModel(params.rows, params.cols, params.pe_params(), params.num_colors)

    def chain(self, words: list[int], answers: int) -> list[int]:
        """Apply WRITE and READ packets to the model; return what leaves the chain's end (READ
        answers, broadcasts, packets for disabled tiles). SHELL packets are dropped: the repair
        map stands for the shells."""
        out: list[int] = []
        i = 0
        enabled = self.rmap.enabled
        while i < len(words):
            head = decode_header(words[i])
            end = i + 1 + head.body_words
            if head.command == Command.WRITE:
                addr, data = words[i + 1], words[i + 2:end]
                if head.broadcast:
                    targets = [(r, c) for r in range(self.params.rows)
                               for c in range(self.params.cols)]
                elif enabled[head.row, head.col]:
                    targets = [self.rmap.logical(head.row, head.col)]
                else:
                    targets = []
                if targets:
                    data = _as_array(data)  # once for every target
                for r, c in targets:
                    self.model.cfg_write_block(r, c, addr, data)
                if not targets or head.broadcast:  # broadcasts reach the chain's end
                    out += words[i:end]
            elif head.command == Command.READ:
                addr = words[i + 1]
                if enabled[head.row, head.col]:
                    r, c = self.rmap.logical(head.row, head.col)
                    out += [header(Command.RDATA, head.row, head.col, head.count)]
                    out += [self.model.cfg_read(r, c, addr + k) for k in range(head.count)]
                else:
                    out += words[i:end]
            elif head.command != Command.SHELL:  # RDATA or unknown: passed on, as by a station
                out += words[i:end]
            i = end
        return out

    def send(self, port: str, wavelets) -> None:
        """Queue ``(data, colour, ctrl)`` wavelets into host port ``port`` (``"n0"``)."""
        self.model.send(port[0], int(port[1:]), [Wavelet(d, c, k) for d, c, k in wavelets])

    def run(self, max_cycles: int, expect: dict[str, int]) -> dict:
        """Run the model until it settles (``max_cycles`` does not apply: it is untimed).

        Raises
        ------
        DriverError
            If the model never settles.
        """
        try:
            self.model.run()
        except RuntimeError as exc:  # never settles: e.g. tasks that keep activating each other
            raise DriverError(f"the golden model did not settle: {exc}; busy logical tiles "
                              f"{self.model.busy_tiles()}") from exc
        received = {}
        for (edge, index), ws in list(self.model.host_out.items()):
            received[f"{edge}{index}"] = [(w.data, w.color, w.ctrl) for w in ws]
        self.model.host_out.clear()
        missing = {p: n - len(received.get(p, [])) for p, n in expect.items()
                   if len(received.get(p, [])) < n}
        busy = self.model.busy_tiles()
        error = (any(pe.errors for row in self.model.pes for pe in row)
                 or any(any(row) for row in self.model.dropped))
        return {"cycles": None, "received": received, "timeout": bool(missing),
                "busy_logical": busy, "pending": {}, "error": int(error)}

    def set_faults(self, modes) -> None:
        """Nothing to do: the golden model has no defective tiles (they are bypassed)."""

    def close(self) -> None:
        """Nothing to release."""
