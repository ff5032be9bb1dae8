"""Round-robin arbitration."""

from amaranth.hdl import Elaboratable, Module, Mux, Signal

__all__ = ["RoundRobin"]


class RoundRobin(Elaboratable):
    """A round-robin arbiter over ``count`` requesters (combinational one-hot grant).

    The grant goes to the first requester after the one granted last (wrapping around); the
    priority mask moves only when ``advance`` is asserted, so a grant that was not used is
    offered again. Implemented as mask-and-isolate-lowest-bit (``x & -x``): requests above the
    last grant are searched first, then all requests. The grant is one-hot, so a consumer can
    select data with an AND-OR mux instead of a wide index mux.

    Parameters
    ----------
    count : int
        Number of requesters (at least 1).

    Attributes
    ----------
    requests : Signal(count), in
        Request vector.
    advance : Signal(1), in
        The current grant was used: give the granted requester the lowest priority next.
    grant : Signal(count), out
        One-hot grant (zero when there is no request).
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
        self.grant = Signal(count)
        self.valid = Signal()

    def elaborate(self, platform):
        m = Module()
        n = self.count
        # upper: requesters strictly after the last grant (all of them after reset).
        upper = Signal(n, init=(1 << n) - 1)
        masked = Signal(n)
        m.d.comb += masked.eq(self.requests & upper)
        pool = Signal(n)
        m.d.comb += pool.eq(Mux(masked.any(), masked, self.requests))
        m.d.comb += [
            self.grant.eq(pool & -pool),  # isolate the lowest set bit
            self.valid.eq(self.requests.any()),
        ]
        with m.If(self.advance & self.valid):
            # Everything strictly above the granted bit.
            m.d.sync += upper.eq(~((self.grant - 1) | self.grant))
        return m
