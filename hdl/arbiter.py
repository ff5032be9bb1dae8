"""Round-robin arbitration."""

from amaranth.hdl import Const, Elaboratable, Module, Signal

__all__ = ["RoundRobin"]


class RoundRobin(Elaboratable):
    """A round-robin arbiter over ``count`` requesters (combinational grant, registered pointer).

    The grant goes to the first requester after the one granted last (wrapping around); the
    pointer moves only when ``advance`` is asserted, so a grant that was not used is offered again.
    This is the usual mask-and-priority-encode arbiter: requests above the pointer are searched
    first, then all requests.

    Parameters
    ----------
    count : int
        Number of requesters (at least 1).

    Attributes
    ----------
    requests : Signal(count), in
        Request vector.
    advance : Signal(1), in
        The current grant was used: move the pointer to it.
    grant : Signal(range(count)), out
        Index of the granted requester (meaningful when ``valid``).
    valid : Signal(1), out
        At least one request is asserted.

    Raises
    ------
    ValueError
        If ``count`` is not a positive integer.
    """

    def __init__(self, count: int):
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        self.count = count
        self.requests = Signal(count)
        self.advance = Signal()
        self.grant = Signal(range(max(count, 2)))
        self.valid = Signal()

    def elaborate(self, platform):
        m = Module()
        n = self.count
        last = Signal(range(max(n, 2)), init=n - 1)
        # upper[i] is high for the requesters strictly after the last grant.
        upper = Signal(n)
        for i in range(n):
            m.d.comb += upper[i].eq(Const(i) > last)
        masked = Signal(n)
        m.d.comb += masked.eq(self.requests & upper)

        # Priority encoders: later assignments win, so iterate from the highest index down.
        first_any = Signal.like(self.grant)
        first_masked = Signal.like(self.grant)
        for i in reversed(range(n)):
            with m.If(self.requests[i]):
                m.d.comb += first_any.eq(i)
            with m.If(masked[i]):
                m.d.comb += first_masked.eq(i)

        m.d.comb += [
            self.valid.eq(self.requests.any()),
            self.grant.eq(first_any),
        ]
        with m.If(masked.any()):
            m.d.comb += self.grant.eq(first_masked)
        with m.If(self.advance & self.valid):
            m.d.sync += last.eq(self.grant)
        return m
