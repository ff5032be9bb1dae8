"""Tile parameters: the shell register's select fields hold at most MAX_SPARES spares."""

import pytest

from fabric.array import FabricParams
from fabric.repair import MAX_SPARES
from fabric.tile import Tile, select_bits


@pytest.mark.parametrize("spares", [-1, MAX_SPARES + 1])
def test_out_of_range_spares_raise_value_error(spares):
    with pytest.raises(ValueError, match=rf"spares must be between 0 and {MAX_SPARES} spare "
                                         rf"columns, not {spares}"):
        Tile(spares=spares)


@pytest.mark.parametrize("spares", [1.5, True, "1"])
def test_non_integer_spares_raise_type_error(spares):
    with pytest.raises(TypeError, match=r"spares must be an integer, not"):
        Tile(spares=spares)


def test_select_width_covers_every_offset():
    for spares in range(MAX_SPARES + 1):
        assert 2 ** select_bits(spares) >= 2 * spares + 1  # offsets -S..S, stored + S
    # The largest spare count is accepted (FabricParams builds a tile to validate).
    assert FabricParams(rows=1, cols=1, spares=MAX_SPARES).physical_cols == 1 + MAX_SPARES


def test_registered_outputs_need_deeper_queues():
    """Registered router outputs keep a place per colour for the wavelet in flight, so the
    router's queues need three places (the PE's always keep one, for the wavelet in its filter
    stage or the router's output register); the errors say which and why."""
    with pytest.raises(ValueError, match=r"output_register=True needs queue_depth >= 3, not 2"):
        Tile(output_register=True)
    with pytest.raises(ValueError, match=r"in_depth must be between 3 and 16 wavelets per colour"):
        Tile(output_register=True, queue_depth=3, in_depth=2)
    tile = Tile(output_register=True, queue_depth=3, in_depth=3)
    assert tile.router.output_register and tile.pe.p.in_flight == 1
