"""Configuration-chain packets (the format of :mod:`hdl.config_chain`), built and parsed in Python
with the RTL's own layouts (:class:`hdl.config_chain.ChainHeader`, :class:`~hdl.config_chain.
ShellWord`). The tile's address map is :class:`fabric.tile.TileMap`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from hdl.config_chain import BROADCAST, MAX_COUNT, Command, ShellWord
from hdl.config_chain import ChainHeader as HeaderLayout

__all__ = [
    "Command",
    "BROADCAST",
    "MAX_COUNT",
    "header",
    "ChainHeader",
    "decode_header",
    "write_packets",
    "read_packet",
    "shell_packet",
    "parse_answers",
    "shell_word",
]


def header(command: int, row: int, col: int, count: int) -> int:
    """A packet header word.

    Raises
    ------
    ValueError
        If a field is out of range.
    """
    if not 0 <= row <= 0xFF or not 0 <= col <= 0xFF:
        raise ValueError(f"tile ({row}, {col}) is outside the 8-bit chain coordinates")
    if not 0 <= count <= MAX_COUNT:
        raise ValueError(f"packet count {count} is outside 0..{MAX_COUNT}")
    return HeaderLayout.const({"command": command, "row": row, "col": col,
                               "count": count}).as_bits()


class ChainHeader(NamedTuple):
    """A decoded packet header (see :func:`decode_header`)."""

    command: int
    row: int
    col: int
    count: int

    @property
    def broadcast(self) -> bool:
        """Whether the packet addresses every enabled tile (row = column = ``BROADCAST``)."""
        return self.row == BROADCAST and self.col == BROADCAST

    @property
    def body_words(self) -> int:
        """Words of the packet after its header, counted as a chain station counts them: the
        address and ``count`` data words (WRITE), ``count`` data words (RDATA), one word (READ,
        SHELL and any other command)."""
        if self.command == Command.WRITE:
            return self.count + 1
        if self.command == Command.RDATA:
            return self.count
        return 1


def decode_header(word: int) -> ChainHeader:
    """Decode a packet header word (:class:`hdl.config_chain.ChainHeader`).

    The one place in Python that reads a header; :func:`header` builds one.
    """
    h = HeaderLayout.from_bits(int(word) & 0xFFFF_FFFF)
    return ChainHeader(h.command, h.row, h.col, h.count)


def write_packets(row: int, col: int, address: int,
                  words: Sequence[int] | np.ndarray) -> list[int]:
    """WRITE packets (split every ``MAX_COUNT`` words) for consecutive tile addresses.

    ``words`` may be a numpy integer array (an SRAM image): it is reduced to 32 bits in bulk.
    """
    out: list[int] = []
    if isinstance(words, np.ndarray):
        words = (words.astype(np.int64).ravel() & 0xFFFF_FFFF).tolist()
    else:
        words = [int(w) & 0xFFFF_FFFF for w in words]
    for start in range(0, max(len(words), 1), MAX_COUNT):
        chunk = words[start:start + MAX_COUNT]
        out += [header(Command.WRITE, row, col, len(chunk)), address + start, *chunk]
    return out


def read_packet(row: int, col: int, address: int, count: int) -> list[int]:
    """A READ packet for ``count`` words from ``address`` of tile (row, col)."""
    return [header(Command.READ, row, col, count), address]


def shell_word(enable: bool, sel_n: int, sel_s: int) -> int:
    """The shell register (:class:`hdl.config_chain.ShellWord`): enable and the vertical
    neighbour selects.

    Raises
    ------
    ValueError
        If a select does not fit its field.
    """
    if not 0 <= sel_n < 16 or not 0 <= sel_s < 16:
        raise ValueError(f"vertical selects must be 0..15, not {sel_n}, {sel_s}")
    return ShellWord.const({"enable": int(bool(enable)), "sel_n": sel_n,
                            "sel_s": sel_s}).as_bits()


def shell_packet(row: int, col: int, word: int) -> list[int]:
    """A SHELL packet setting the shell register of physical tile (row, col)."""
    return [header(Command.SHELL, row, col, 1), word]


def parse_answers(words: Iterable[int]) -> tuple[dict[tuple[int, int], list[list[int]]], list[int]]:
    """Split what came out of the chain into RDATA answers per tile and unclaimed packets.

    Broadcast WRITE packets pass through every tile and come out at the end of the chain by
    design; they are dropped here. Packet lengths follow :attr:`ChainHeader.body_words`.

    Returns
    -------
    answers : dict[(row, col), list of word lists]
        Each READ answer, in arrival order.
    unclaimed : list[int]
        Words of packets nobody took (e.g. a READ of a disabled tile).
    """
    words = list(words)
    answers: dict[tuple[int, int], list[list[int]]] = {}
    unclaimed: list[int] = []
    i = 0
    while i < len(words):
        head = decode_header(words[i])
        end = i + 1 + head.body_words
        if head.command == Command.RDATA:
            answers.setdefault((head.row, head.col), []).append(words[i + 1:end])
        elif not (head.command == Command.WRITE and head.broadcast):
            unclaimed += words[i:end]
        i = end
    return answers, unclaimed
