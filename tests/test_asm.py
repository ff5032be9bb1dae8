"""The assembler's DSD periods (docs/isa.md, "DSDs"): ``wrap=`` on memory DSDs, ``repeat=`` on
fabric inputs, their word-1 encoding and the errors for misuse."""

import pytest

from pe.isa import DsdKind, DsdWord1, unpack_dsd
from sim.model.pe import PEParams
from sim.toolchain.asm import AsmError, assemble

PARAMS = PEParams(sram_words=64, imem_words=32, num_colors=4, num_tasks=4, num_dsds=4)


def dsd_words(text: str):
    image = assemble(text + "\n.task 0 t\nt:\n    end\n", PARAMS)
    return image.dsds[0]


def test_periods_are_packed_in_word_1():
    w0, w1 = dsd_words(".dsd y mem fp32 base=4 len=40 stride=1 wrap=8")
    assert unpack_dsd(w0, w1) == (DsdKind.MEM, 0, 4, 40, 1, 0, 8)
    assert DsdWord1.from_bits(w1).period == 8 and w1 >> 22 == 8  # bits 31:22
    w0, w1 = dsd_words(".dsd x fabin bf16 color=2 len=40 repeat=5")
    assert unpack_dsd(w0, w1)[0] == DsdKind.FABIN and unpack_dsd(w0, w1)[6] == 5
    assert unpack_dsd(*dsd_words(".dsd y mem fp32 base=0 len=4"))[6] == 0


def test_a_wrapping_dsd_is_checked_over_its_period():
    # 40 elements of stride 2 would reach element 82 (beyond 64 words); wrapping every 8 they
    # reach 4 + 7 * 2 = 18 only
    dsd_words(".dsd y mem fp32 base=4 len=40 stride=2 wrap=8")
    with pytest.raises(AsmError, match="outside the SRAM"):
        dsd_words(".dsd y mem fp32 base=4 len=40 stride=2")
    with pytest.raises(AsmError, match="outside the SRAM"):
        dsd_words(".dsd y mem fp32 base=4 len=40 stride=10 wrap=8")


@pytest.mark.parametrize("decl, message", [
    (".dsd x fabin fp32 color=1 len=8 wrap=2", "wrap= is for mem DSDs only"),
    (".dsd y mem fp32 base=0 len=8 repeat=2", "repeat= is for fabin DSDs only"),
    (".dsd o fabout fp32 color=1 len=8 repeat=2", "repeat= is for fabin DSDs only"),
    (".dsd y mem fp32 base=0 len=8 wrap=1024", r"wrap=1024 is outside 0\.\.1023"),
    (".dsd x fabin fp32 color=1 len=8 repeat=-1", r"outside 0\.\.1023"),
])
def test_period_misuse_is_refused_with_a_clear_error(decl, message):
    with pytest.raises(AsmError, match=message):
        dsd_words(decl)
