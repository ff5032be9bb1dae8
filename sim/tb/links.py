"""cocotb drivers and monitors for fabric links (imported only inside a simulator).

One coroutine does the per-cycle work of every link of a bench, which keeps Python overhead per
simulated cycle low. Each cycle, at the falling clock edge, it reads the registered
``color_ready`` of every source link, drives sources and sinks, waits for the combinational logic
to settle (``ReadOnly``) and records the transfers of that cycle. This works the same on
Verilator and Icarus.

* :class:`LinkSource` — sends wavelets into a DUT input link. Colour-aware by default: it keeps
  one queue per colour and offers, in rotation, a colour whose ``color_ready`` bit is set, so a
  stalled colour never holds up another (order is kept per colour). ``colour_aware=False`` gives a
  plain stream source that offers wavelets in order and waits for ``ready``.
* :class:`LinkSink` — takes wavelets from a DUT output link, with an optional pause pattern
  (whole-link backpressure) and a per-colour stall mask.
* :class:`LinkMonitor` — passive protocol checks of one link, whichever side the DUT is on:
  no X on ``valid``/``color_ready`` (nor on a valid ``payload``); a colour-aware transmitter
  offers only a colour whose ``color_ready`` bit is set (in the cycle before, behind an output
  register); ``ready`` equals ``color_ready[payload.color]`` (high for colours the link does
  not have; at least that where the receiver keeps a place for a wavelet in flight); an offer
  not taken is held unchanged. :class:`LinkBench` puts one on every link it drives.
* :func:`pauses` — idle/backpressure patterns (cocotbext-axi style).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from sim.model.wavelet import Wavelet, pack, unpack

__all__ = ["LinkSource", "LinkSink", "LinkMonitor", "LinkBench", "pauses", "start_clock",
           "reset"]


def start_clock(dut, period_ns: int = 10) -> None:
    """Start the DUT's ``clk``."""
    cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())


async def reset(dut, cycles: int = 2) -> None:
    """Hold the DUT's ``rst`` for ``cycles`` cycles."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _never() -> Iterator[bool]:
    return itertools.repeat(False)


def pauses(kind: str, seed: int = 0, busy: float = 0.5) -> Iterator[bool]:
    """An endless pause pattern (``True`` = pause this cycle), for idle insertion at a source or
    backpressure at a sink.

    ``kind`` is ``"none"``, ``"random"`` (a pause with probability ``busy``), ``"bursty"`` (runs
    of 1 to 16 busy or paused cycles) or ``"every3"`` (one cycle in three).

    Raises
    ------
    ValueError
        For an unknown ``kind``.
    """
    import random

    rng = random.Random(seed)
    if kind == "none":
        return _never()
    if kind == "random":
        return iter(lambda: rng.random() < busy, None)
    if kind == "every3":
        return itertools.cycle([False, False, True])
    if kind == "bursty":
        def bursts():
            state = False
            while True:
                yield from itertools.repeat(state, rng.randint(1, 16))
                state = not state
        return bursts()
    raise ValueError(f"unknown pause pattern {kind!r}; use none, random, bursty or every3")


class _LinkEnd:
    """The bench's end of a DUT link ``<prefix>__payload/valid/ready/color_ready``.

    Parameters
    ----------
    dut : cocotb handle
    prefix : str
        Port name prefix, e.g. ``"in_w"`` (a DUT input) or ``"out_e"`` (a DUT output).
    num_colors : int
        Width of the link's ``color_ready``.
    pause : iterator of bool, optional
        ``True`` = do nothing this cycle: a source offers nothing (idle injection), a sink
        accepts nothing (backpressure).
    """

    def __init__(self, dut, prefix: str, num_colors: int, pause: Iterator[bool] | None):
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.color_ready = getattr(dut, f"{prefix}__color_ready")
        self.name = prefix
        self.num_colors = num_colors
        self.pause = pause or _never()

    def drive(self) -> None:
        """Drive this cycle's signals (the bench calls it at the falling clock edge)."""
        raise NotImplementedError

    def sample(self, cycle: int) -> None:
        """Record cycle ``cycle``'s transfer (the bench calls it once the logic has settled)."""
        raise NotImplementedError


class LinkSource(_LinkEnd):
    """Drives wavelets into a DUT input link.

    ``dut``, ``prefix``, ``num_colors`` and ``pause`` are those of every link end
    (:class:`_LinkEnd`); ``colour_aware`` uses ``color_ready`` to pick a colour that can be
    accepted (default), or makes a plain in-order stream source. ``in_flight`` is the DUT
    receiver's (:class:`hdl.color_queue.ColorQueues`): 1 when it keeps a place per colour for
    a registered transmitter, so its ``ready`` may be high where ``color_ready`` is low (for the
    link's :class:`LinkMonitor`).
    """

    def __init__(self, dut, prefix: str, num_colors: int, *, pause: Iterator[bool] | None = None,
                 colour_aware: bool = True, in_flight: int = 0):
        super().__init__(dut, prefix, num_colors, pause)
        self.colour_aware = colour_aware
        self.in_flight = in_flight
        self.queues: dict[int, deque[Wavelet]] = {}
        self.order: deque[Wavelet] = deque()  # for the plain mode
        self.rotation = 0
        self.offered: Wavelet | None = None
        self.sent: list[tuple[int, Wavelet]] = []  # (cycle, wavelet)
        self.valid.value = 0
        self._valid_high = False

    def send(self, wavelets: Iterable[Wavelet]) -> None:
        """Queue wavelets to send."""
        for w in wavelets:
            self.queues.setdefault(w.color, deque()).append(w)
            self.order.append(w)

    @property
    def pending(self) -> int:
        """Wavelets not yet accepted by the DUT."""
        return len(self.order)

    def _choose(self) -> Wavelet | None:
        if self.offered is not None:  # a plain source holds its offer until taken
            return self.offered
        if not self.order:
            return None
        if not self.colour_aware:
            return self.order[0]
        ready = int(self.color_ready.value)
        colours = [c for c, q in self.queues.items() if q]
        colours.sort()
        n = len(colours)
        for i in range(n):
            c = colours[(self.rotation + i) % n]
            if c >= self.num_colors or ready >> c & 1:
                self.rotation = (self.rotation + i + 1) % max(n, 1)
                return self.queues[c][0]
        return None

    def drive(self) -> None:
        if self.offered is None and not self.order:  # nothing to send: touch nothing
            if self._valid_high:
                self.valid.value = 0
                self._valid_high = False
            return
        w = None if (self.offered is None and next(self.pause)) else self._choose()
        self.offered = w
        if w is None:
            if self._valid_high:
                self.valid.value = 0
                self._valid_high = False
        else:
            self.payload.value = pack(w)
            self.valid.value = 1
            self._valid_high = True

    def sample(self, cycle: int) -> None:
        w = self.offered
        if w is None:
            return
        if not int(self.ready.value):
            if self.colour_aware:
                raise AssertionError(
                    f"{self.name}: link contract broken: colour {w.color} was offered with "
                    f"color_ready set but ready was low"
                )
            return  # a plain source holds its offer
        self.queues[w.color].popleft()
        self.order.remove(w)
        self.sent.append((cycle, w))
        self.offered = None


class LinkSink(_LinkEnd):
    """Receives wavelets from a DUT output link (parameters: those of every link end,
    :class:`_LinkEnd`), with a per-colour stall mask, :attr:`stalled_colours`.

    Two kinds of backpressure:

    * default: in a paused cycle the sink lowers ``ready`` and every ``color_ready`` bit, so
      credit may vanish without a transfer (harsher than any receiver of the fabric; the DUT
      must lose nothing, but its progress under such patterns is not part of the contract);
    * ``credit_depth=n``: the sink behaves as a fabric receiver (:class:`hdl.color_queue.
      ColorQueues`): ``n`` places per colour, ``color_ready[c]`` set while colour ``c`` has a
      free place, so credit disappears only through a transfer; ``pause`` then stalls the
      sink's *consumer*, which otherwise frees one place per cycle (the oldest wavelet).

    ``latency=1`` serves a transmitter with an output register, which sends in cycle ``t + 1``
    what it decided on the ``color_ready`` of cycle ``t``: the sink takes every wavelet that
    arrives (``ready`` stays high) and checks that its colour had credit in the cycle before;
    a pause withdraws credit only for later cycles, and in credit mode a colour has credit while
    it has a free place beyond the one that may be in flight.
    """

    def __init__(self, dut, prefix: str, num_colors: int, *, pause: Iterator[bool] | None = None,
                 credit_depth: int | None = None, latency: int = 0):
        super().__init__(dut, prefix, num_colors, pause)
        if latency not in (0, 1):
            raise ValueError(f"latency must be 0 or 1, not {latency!r}")
        if credit_depth is not None and credit_depth < 1 + latency:
            raise ValueError(f"credit_depth must be at least {1 + latency} with latency "
                             f"{latency}, not {credit_depth}")
        self.latency = latency
        self._credit_before = 0  # the colour mask driven in the previous cycle
        self.all_colours = (1 << num_colors) - 1
        #: Colours this sink refuses (bit c set = colour c stalled).
        self.stalled_colours = 0
        self.received: list[tuple[int, Wavelet]] = []  # (cycle, wavelet)
        self.credit_depth = credit_depth
        self._held: deque[int] = deque()  # credit mode: colours of the wavelets held, in order
        self._accepting = False
        self._driven: tuple[bool, int] | None = None
        self.ready.value = 0
        self.color_ready.value = 0

    def drive(self) -> None:
        self._credit_before = self._driven[1] if self._driven else 0
        if self.credit_depth is None:
            self._accepting = not next(self.pause)
            mask = self.all_colours & ~self.stalled_colours if self._accepting else 0
        else:
            if self._held and not next(self.pause):
                self._held.popleft()  # the consumer takes the oldest wavelet
            full = 0
            for c in set(self._held):
                if self._held.count(c) >= self.credit_depth - self.latency:
                    full |= 1 << c
            mask = self.all_colours & ~self.stalled_colours & ~full
            self._accepting = True  # what is offered without credit is simply not taken
        if self.latency:
            self._accepting = True  # what arrives was sent on the credit of the cycle before
        if self._driven != (self._accepting, mask):  # write only what changes
            self.color_ready.value = mask
            self.ready.value = 1 if self._accepting else 0
            self._driven = (self._accepting, mask)

    def sample(self, cycle: int) -> None:
        if self._accepting and int(self.valid.value):
            w = unpack(int(self.payload.value))
            credit = self._credit_before if self.latency else self._driven[1]
            if self.latency or self.credit_depth is not None:
                if w.color < self.num_colors and credit >> w.color & 1 == 0:
                    raise AssertionError(f"{self.name}: got colour {w.color} without credit")
            elif self.stalled_colours >> w.color & 1:
                raise AssertionError(f"{self.name}: got colour {w.color} while it was stalled")
            if self.credit_depth is not None:
                self._held.append(w.color)
                if self._held.count(w.color) > self.credit_depth:
                    raise AssertionError(f"{self.name}: colour {w.color} overflowed its "
                                         f"{self.credit_depth} places")
            self.received.append((cycle, w))

    def wavelets(self) -> list[Wavelet]:
        """The wavelets received so far, in order, without their cycles."""
        return [w for _, w in self.received]


def _resolvable(value) -> bool:
    return getattr(value, "is_resolvable", True)


class LinkMonitor:
    """Passive protocol checks of one link ``<prefix>__payload/valid/ready/color_ready``.

    Parameters
    ----------
    dut : cocotb handle
    prefix : str
        Port name prefix, e.g. ``"in_w"`` or ``"out_e"``.
    num_colors : int
        Width of the link's ``color_ready``.
    colour_aware : bool
        The transmitter is colour-aware (the router, the PE, the benches' default sources): it
        must offer only a colour whose ``color_ready`` bit is set. A plain stream transmitter
        may offer any colour and must hold its offer until ``ready``.
    latency : int
        1 for a transmitter with an output register: the ``color_ready`` bit that counts is
        the previous cycle's, and the receiver must take what it sends.
    in_flight : int
        1 for a receiver that keeps a place per colour for a wavelet in flight: its ``ready``
        must be high where ``color_ready`` is set, and may be high where it is not.

    Each cycle (after the logic settled, from :meth:`check`) it raises ``AssertionError``,
    naming the link and cycle, if ``valid`` or ``color_ready`` is X, ``payload`` is X while
    valid, a colour-aware transmitter offers a colour without ``color_ready``, ``ready`` is not
    ``color_ready[payload.color]`` while valid (high for colours at or above ``num_colors``), or
    an offer that was not taken changed or was withdrawn.
    """

    def __init__(self, dut, prefix: str, num_colors: int, *, colour_aware: bool = True,
                 latency: int = 0, in_flight: int = 0):
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.color_ready = getattr(dut, f"{prefix}__color_ready")
        self.name, self.num_colors, self.colour_aware = prefix, num_colors, colour_aware
        self.latency, self.in_flight = latency, in_flight
        self.credit_before = 0  # color_ready in the previous cycle
        self.held: int | None = None  # payload of an offer not taken last cycle
        self.transfers = 0

    def _fail(self, cycle: int, what: str):
        raise AssertionError(f"link {self.name}, cycle {cycle}: {what}")

    def check(self, cycle: int) -> None:
        """Check this cycle's signals (call once the logic has settled)."""
        valid, color_ready = self.valid.value, self.color_ready.value
        if not _resolvable(valid):
            self._fail(cycle, f"valid is {valid}")
        if not _resolvable(color_ready):
            self._fail(cycle, f"color_ready is {color_ready}")
        credit = self.credit_before if self.latency else int(color_ready)
        self.credit_before = int(color_ready)
        if not int(valid):
            if self.held is not None:
                self._fail(cycle, "an offer that was not taken was withdrawn")
            return
        payload = self.payload.value
        if not _resolvable(payload):
            self._fail(cycle, f"payload is {payload} while valid")
        bits = int(payload)
        if self.held is not None and bits != self.held:
            self._fail(cycle, f"an offer that was not taken changed from {self.held:#x} to "
                              f"{bits:#x}")
        color = unpack(bits).color
        has_credit = color >= self.num_colors or bool(credit >> color & 1)
        if self.colour_aware and not has_credit:
            when = "in the cycle before" if self.latency else "while"
            self._fail(cycle, f"colour {color} offered {when} its color_ready bit was low")
        ready = self.ready.value
        credit_now = color >= self.num_colors or bool(int(color_ready) >> color & 1)
        exact = not (self.latency or self.in_flight)
        if (not _resolvable(ready)
                or (exact and int(ready) != int(credit_now))
                or (not exact and (has_credit or credit_now) and not int(ready))):
            self._fail(cycle, f"ready is {ready} for colour {color} with color_ready "
                              f"{int(color_ready):#x}")
        if int(ready):
            self.transfers += 1
            self.held = None
        else:
            self.held = bits


class LinkBench:
    """Runs the per-cycle work of a set of sources and sinks on one clock.

    Parameters
    ----------
    dut : cocotb handle
    sources, sinks : iterables of :class:`LinkSource` / :class:`LinkSink`
    hooks : list of callables, optional
        Called each cycle after sampling with the cycle number (for extra monitors).

    Every source's and sink's link gets a :class:`LinkMonitor` (:attr:`monitors`); a sink's
    transmitter, the DUT, is taken to be colour-aware.
    """

    def __init__(self, dut, sources: Iterable[LinkSource] = (), sinks: Iterable[LinkSink] = (),
                 hooks: list[Callable[[int], None]] | None = None):
        self.dut = dut
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.monitors = (
            [LinkMonitor(dut, s.name, s.num_colors, colour_aware=s.colour_aware,
                         in_flight=s.in_flight) for s in self.sources]
            + [LinkMonitor(dut, k.name, k.num_colors, latency=k.latency) for k in self.sinks])
        self.hooks = [m.check for m in self.monitors] + list(hooks or [])
        self.cycle = 0
        self._task = None

    def start(self) -> None:
        """Start the per-cycle coroutine."""
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        """Stop the per-cycle coroutine (the links keep their last values)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        while True:
            await FallingEdge(self.dut.clk)
            for s in self.sources:
                s.drive()
            for k in self.sinks:
                k.drive()
            await ReadOnly()
            for s in self.sources:
                s.sample(self.cycle)
            for k in self.sinks:
                k.sample(self.cycle)
            for h in self.hooks:
                h(self.cycle)
            self.cycle += 1

    async def wait_until(self, done: Callable[[], bool], max_cycles: int, what: str) -> int:
        """Wait until ``done()`` holds; returns the cycles waited.

        Raises
        ------
        AssertionError
            If it does not hold within ``max_cycles`` (the deadlock watchdog).
        """
        start = self.cycle
        while not done():
            if self.cycle - start > max_cycles:
                pending = {s.name: s.pending for s in self.sources if s.pending}
                raise AssertionError(
                    f"watchdog: {what} not reached within {max_cycles} cycles "
                    f"(sources still holding wavelets: {pending})"
                )
            await RisingEdge(self.dut.clk)
        return self.cycle - start
