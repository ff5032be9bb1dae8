"""The quick formal proofs (sim/formal), and each shown to fail on a planted bug."""

import pytest
from test_router import UnfairRouter

from fabric.array import registered_outputs
from fabric.tile import Tile
from hdl.config_chain import ConfigStation
from router import Router
from sim.formal.proofs import ALL, disabled_tile, router_delivery, router_progress, station_delivery


@pytest.mark.parametrize("name", [n for n, (_, quick) in ALL.items() if quick])
def test_proof_holds(name):
    proof, _ = ALL[name]
    result = proof()
    assert result.proved, result.log


class _LeakyTile(Tile):
    """Planted bug: a disabled tile forwards its south input's valid north."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(~self.enabled):
            m.d.comb += self.out_n.valid.eq(self.in_s.valid)
        return m


@pytest.mark.parametrize("kwargs", [{}, registered_outputs()], ids=["default", "outreg"])
def test_disabled_tile_proof_fails_on_a_planted_leak(kwargs):
    result = disabled_tile(_LeakyTile, **kwargs)
    assert not result.proved
    assert "proof did fail" in result.log, result.log


class _LossyRouter(Router):
    """Planted bug: the south output drops (sends nothing, though the wavelet leaves its queue)
    every wavelet whose data bit 0 is set."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.out_s.payload.data[0]):
            m.d.comb += self.out_s.valid.eq(0)
        return m


class _StrayRouter(Router):
    """Planted bug: the east output also sends whatever the west output sends."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.out_w.valid):
            m.d.comb += [self.out_e.valid.eq(1), self.out_e.payload.eq(self.out_w.payload)]
        return m


class _StuckRouter(Router):
    """Planted bug: no candidate is ever ready, so nothing leaves (nothing is lost either)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += m.submodules.allocator.ready.eq(0)
        return m


@pytest.mark.parametrize("bug, steps", [(_LossyRouter, 6), (_StrayRouter, 6),
                                        (_StuckRouter, 7)])
def test_router_delivery_proof_fails_on_a_planted_bug(bug, steps):
    result = router_delivery(bug, steps=steps)
    assert not result.proved
    assert "proof did fail" in result.log, result.log


class _EagerRouter(Router):
    """Planted bug: every candidate counts as having credit (registered outputs then send on no
    credit at all)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += m.submodules.allocator.ready.eq(1)
        return m


@pytest.mark.parametrize("bug, steps", [(_EagerRouter, 6), (_StuckRouter, 8)])
def test_router_delivery_proof_with_registered_outputs_fails_on_a_planted_bug(bug, steps):
    result = router_delivery(bug, steps=steps, output_register=True)
    assert not result.proved
    assert "proof did fail" in result.log, result.log


class _NarrowRingRouter(Router):
    """Planted bug: an input's turn goes to its ring's colour only when that colour is
    eligible, not when it is the candidate with its last wavelet (which then misses its turn)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        for p, inp in enumerate(self.probes.inputs):
            m.d.comb += inp.forced.eq(self.probes.allocator.first_next[p]
                                      & (inp.ring & inp.eligible).any())
        return m


@pytest.mark.parametrize("bug", [UnfairRouter, _NarrowRingRouter])
def test_router_progress_proof_fails_on_a_planted_bug(bug):
    result = router_progress(bug)
    assert not result.proved
    assert "proof did fail" in result.log, result.log


class _DroppingStation(ConfigStation):
    """Planted bug: a word with bit 0 set is not offered downstream, though the buffer lets it
    go."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.chain_out.payload[0]):
            m.d.comb += self.chain_out.valid.eq(0)
        return m


class _ForgetfulStation(ConfigStation):
    """Planted bug: a data word with bit 1 set is not written to the core."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.chain_in.payload[1]):
            m.d.comb += self.bus.we.eq(0)
        return m


@pytest.mark.parametrize("bug", [_DroppingStation, _ForgetfulStation])
def test_station_delivery_proof_fails_on_a_planted_bug(bug):
    result = station_delivery(bug, steps=6)
    assert not result.proved
    assert "proof did fail" in result.log, result.log
