"""The proofs: each builds a wrapper with assertions around one block and proves it.

* :func:`disabled_tile` — a disabled (bypassed) tile never drives ``valid`` north or south,
  never takes anything from its vertical neighbours, passes W<->E straight through, and its
  core (router, and through it the PE's ramp) receives nothing.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Elaboratable, Module

from hdl.ports import E, N, S, W

from .prover import ProofResult, prove

__all__ = ["DisabledTile", "disabled_tile", "ALL"]


class DisabledTile(Elaboratable):
    """A tile and, while its shell register says disabled, the bypass's properties.

    Parameters
    ----------
    tile_class : type, optional
        :class:`fabric.tile.Tile` (default) or a subclass (a planted bug, in the tests).
    tile_kwargs : keyword arguments for the tile (small ones prove faster; the property does not
        depend on the sizes).
    """

    def __init__(self, tile_class=None, **tile_kwargs):
        from fabric.tile import Tile

        self.tile = (tile_class or Tile)(**tile_kwargs)

    def elaborate(self, platform):
        m = Module()
        t = m.submodules.tile = self.tile
        router = t.router
        with m.If(~t.enabled):
            for p in (N, S):
                out_p = getattr(t, f"out_{'ns'[p == S]}")
                in_p = getattr(t, f"in_{'ns'[p == S]}")
                m.d.comb += [Assert(~out_p.valid, f"a disabled tile drives valid {p}"),
                             Assert(~in_p.ready & ~in_p.color_ready.any(),
                                    "a disabled tile takes from a vertical neighbour")]
            for a, b in (("w", "e"), ("e", "w")):
                src, dst = getattr(t, f"in_{a}"), getattr(t, f"out_{b}")
                m.d.comb += [
                    Assert(dst.valid == src.valid, f"bypass {a}->{b}: valid"),
                    Assert(dst.payload.as_value() == src.payload.as_value(),
                           f"bypass {a}->{b}: payload"),
                    Assert(src.ready == dst.ready, f"bypass {a}->{b}: ready"),
                    Assert(src.color_ready == dst.color_ready, f"bypass {a}->{b}: color_ready"),
                ]
            for p in (N, E, S, W):
                m.d.comb += Assert(~router.port_in(p).valid,
                                   f"the core of a disabled tile receives on port {p}")
        return m


def _ports(component) -> list:
    """Every port signal of a ``wiring.Component``."""
    from amaranth.hdl import Value

    return [Value.cast(value) for _, _, value in component.signature.flatten(component)]


def disabled_tile(tile_class=None, **tile_kwargs) -> ProofResult:
    """Prove :class:`DisabledTile` over every state and input (about 15 s)."""
    kwargs = dict(num_colors=4, sram_words=64, imem_words=32, num_tasks=4, num_dsds=4)
    kwargs.update(tile_kwargs)
    design = DisabledTile(tile_class, **kwargs)
    return prove(design, "disabled_tile", ports=_ports(design.tile))


#: name -> (proof function, quick enough for every pytest run)
ALL = {"disabled_tile": (disabled_tile, True)}
