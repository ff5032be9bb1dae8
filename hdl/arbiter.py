"""Arbitration: a round-robin arbiter, and the shared-priority output stage of an allocator."""

from amaranth.hdl import Cat, Elaboratable, Module, Mux, Signal

from .params import check_int

__all__ = ["RoundRobin", "SharedPriority", "lowest_first"]


def lowest_first(requests, upper):
    """One-hot grant of the first request at or above the ``upper`` mask, else the first request.

    ``upper`` is a thermometer mask of the positions searched first (mask-and-isolate: the
    lowest set bit of ``x`` is ``x & -x``).
    """
    masked = requests & upper
    pool = Mux(masked.any(), masked, requests)
    return pool & -pool


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
        Number of requesters (1 to 64).

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
    TypeError, ValueError
        If ``count`` is not an integer from 1 to 64.
    """

    def __init__(self, count: int):
        self.count = check_int("count", count, 1, 64, "requesters")
        self.requests = Signal(count)
        self.advance = Signal()
        self.grant = Signal(count)
        self.valid = Signal()

    def elaborate(self, platform):
        m = Module()
        n = self.count
        # upper: requesters strictly after the last grant (all of them after reset).
        upper = Signal(n, init=(1 << n) - 1)
        m.d.comb += [
            self.grant.eq(lowest_first(self.requests, upper)),
            self.valid.eq(self.requests.any()),
        ]
        with m.If(self.advance & self.valid):
            # Everything strictly above the granted bit.
            m.d.sync += upper.eq(~((self.grant - 1) | self.grant))
        return m


class SharedPriority(Elaboratable):
    """The output stage of a separable allocator: ``outputs`` arbiters over the same
    ``inputs`` requesters, with one shared rotating priority order.

    Every output grants its requester that comes first in the shared order; so the requester
    first in the order gets *every* output it asks for, which an atomic multicast (a requester
    that must win several outputs in the same cycle) needs to make progress: separate
    round-robin arbiters can stay out of phase forever. After each cycle the order starts just
    after that first requester, whether it went or not (so one that cannot go holds the top for
    a single cycle), which also alternates two requesters contending for one output.

    Parameters
    ----------
    inputs : int
        Requesters (1 to 64).
    outputs : int
        Resources, each with its own request vector and grant (1 to 64).

    Attributes
    ----------
    requests : list of Signal(inputs), in
        ``requests[o]``: the requesters asking for output ``o``.
    grants : list of Signal(inputs), out
        ``grants[o]``: one-hot grant of output ``o`` (zero without a request).

    Raises
    ------
    TypeError, ValueError
        If a count is not an integer from 1 to 64.
    """

    def __init__(self, inputs: int, outputs: int):
        self.inputs = check_int("inputs", inputs, 1, 64, "requesters")
        self.outputs = check_int("outputs", outputs, 1, 64, "resources")
        self.requests = [Signal(inputs, name=f"requests_{o}") for o in range(outputs)]
        self.grants = [Signal(inputs, name=f"grants_{o}") for o in range(outputs)]

    def elaborate(self, platform):
        m = Module()
        n = self.inputs
        upper = Signal(n, init=(1 << n) - 1)  # requesters searched first
        for req, grant in zip(self.requests, self.grants):
            m.d.comb += grant.eq(lowest_first(req, upper))
        anyone = Signal(n)
        m.d.comb += anyone.eq(Cat(Cat(req[i] for req in self.requests).any() for i in range(n)))
        top = Signal(n)
        m.d.comb += top.eq(lowest_first(anyone, upper))
        with m.If(anyone.any()):
            m.d.sync += upper.eq(~((top - 1) | top))
        return m
