"""The toolchain's switch kernel (sim/toolchain/kernels.py) on the golden fabric, for many
shapes, against its answer written from the definition (the RTL runs it in tests/test_fabric.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from fabric.array import FabricParams
from sim.host.driver import FabricDriver
from sim.model.reference import row_sums
from sim.toolchain.kernels import broadcast_reduce


def _params(rows, cols):
    return FabricParams(rows=rows, cols=cols, spares=1, sram_words=256, imem_words=64,
                        num_colors=8, num_tasks=12, num_dsds=16)


def run_golden(kernel, params):
    driver = FabricDriver(params, backend="golden")
    driver.load(kernel.image)
    for (edge, index), wavelets in kernel.inputs.items():
        driver.send(edge, index, wavelets)
    result = driver.run(expect={}, max_cycles=100_000)
    sums = np.array([driver.read_memory(r, c, addr, n) for r, c, addr, n in kernel.result],
                    dtype=np.uint32)
    return sums, result


@pytest.mark.parametrize("rows, cols, length", [(1, 1, 3), (1, 2, 1), (2, 3, 7), (1, 6, 4),
                                                 (3, 4, 16)])
def test_broadcast_reduce_matches_its_definition(rows, cols, length):
    rng = np.random.default_rng([rows, cols, length])
    x = rng.standard_normal((rows, length)).astype(np.float32)
    w = rng.standard_normal((rows, cols, length)).astype(np.float32)
    params = _params(rows, cols)
    sums, result = run_golden(broadcast_reduce(x, w, params.pe_params()), params)
    assert np.array_equal(sums, row_sums(x, w).view(np.uint32))
    assert not any(result.received.values()), "the kernel sends nothing to the host"


@pytest.mark.parametrize("x_shape, w_shape, kwargs, match", [
    ((2, 4), (3, 2, 4), {}, "must have shape"),
    ((1, 4), (1, 2, 5), {}, "must have shape"),
    ((1, 100), (1, 2, 100), {}, "does not fit"),
    ((1, 4), (1, 2, 4), {"color": 8}, "outside the PEs' 8 colours"),
    ((1, 4), (1, 2, 4), {"color": 2, "start_color": 2}, "must differ"),
])
def test_broadcast_reduce_rejects_bad_input(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        broadcast_reduce(np.zeros(x_shape), np.zeros(w_shape), _params(1, 2).pe_params(),
                         **kwargs)
