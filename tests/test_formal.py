"""The quick formal proofs (sim/formal), and each shown to fail on a planted bug."""

import pytest

from fabric.tile import Tile
from sim.formal.proofs import ALL, disabled_tile


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


def test_disabled_tile_proof_fails_on_a_planted_leak():
    result = disabled_tile(_LeakyTile)
    assert not result.proved
    assert "proof did fail" in result.log, result.log
