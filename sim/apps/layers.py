"""Running mapped layers on a fabric: a layer pipeline with its images back to back, or one input
through every layer host-orchestrated; and the per-PE counters a report needs."""

from __future__ import annotations

import numpy as np

from pe.isa import AddressMap
from sim.host.driver import FabricDriver
from sim.toolchain.mapper import GemvMapping
from sim.toolchain.pipeline import PipelineMapping

__all__ = ["run_layers", "run_pipelined", "read_counters"]


def run_layers(driver: FabricDriver, mappings: list[GemvMapping], x: np.ndarray,
               max_cycles: int = 1_000_000) -> tuple[list[np.ndarray], list[int | None]]:
    """Run one input through every layer (host-orchestrated: each layer's east-edge outputs are
    sent into the next layer's north edge).

    Returns
    -------
    raw : list of np.ndarray[uint32]
        Raw outputs of every layer.
    cycles : list of int or None
        Cycles of each layer's run (None on the golden backend).
    """
    raw, cycles = [], []
    value = np.asarray(x, dtype=np.float32)
    for m in mappings:
        for (edge, index), wavelets in m.inputs(value).items():
            driver.send(edge, index, wavelets)
        result = driver.run(expect=m.expect(), max_cycles=max_cycles, counters=False)
        out = m.gather(result.received)
        raw.append(out)
        cycles.append(result.cycles)
        value = m.values(out, value)
    return raw, cycles


def run_pipelined(driver: FabricDriver, pm: PipelineMapping, xs: np.ndarray,
                  max_cycles: int = 10_000_000) -> tuple[np.ndarray, int | None]:
    """Stream a batch of images through a loaded layer pipeline, back to back, in one run.

    Parameters
    ----------
    xs : np.ndarray of shape (N, K)
        The inputs.

    Returns
    -------
    raw : np.ndarray[uint32] of shape (N, M)
        The last layer's raw outputs.
    cycles : int or None
        Cycles from the first input entering to the fabric idle with every output out (RTL;
        None on the golden backend).
    """
    xs = np.asarray(xs)
    for (edge, index), wavelets in pm.inputs(xs).items():
        driver.send(edge, index, wavelets)
    result = driver.run(expect=pm.expect(len(xs)), max_cycles=max_cycles, counters=False)
    return pm.gather(result.received, len(xs)), result.cycles


def read_counters(driver: FabricDriver) -> tuple[np.ndarray, np.ndarray]:
    """(macs, busy cycles) of every logical PE since the last load, each an np.ndarray of int64
    and shape (rows, cols)."""
    R, C = driver.params.rows, driver.params.cols
    macs = np.zeros((R, C), dtype=np.int64)
    busy = np.zeros((R, C), dtype=np.int64)
    for (r, c), words in driver.read_many(AddressMap.BUSY_CYCLES, 2).items():
        busy[r, c], macs[r, c] = words
    return macs, busy
