"""Arbitration: a round-robin arbiter, and the output allocator of an atomic-multicast switch."""

from amaranth.hdl import Cat, Elaboratable, Module, Mux, Signal

from .params import check_int

__all__ = ["RoundRobin", "AtomicAllocator", "lowest_first"]


def lowest_first(requests, upper):
    """One-hot grant of the first request at or above the ``upper`` mask, else the first request.

    ``upper`` is a thermometer mask of the positions searched first. Mask-and-isolate: the
    lowest set bit of ``x`` is ``x & -x``; both candidates are isolated side by side (two carry
    chains) and chosen at the end, which keeps the choice off the carry chains' path.
    """
    masked = requests & upper
    return Mux(masked.any(), masked & -masked, requests & -requests)


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
    delayed : bool
        Update the priority mask from the grant of the previous cycle (registered) instead of
        the current one: the mask logic leaves the grant's path, and a requester granted twice
        in a row before the mask catches up is the only change (still starvation-free).

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

    def __init__(self, count: int, *, delayed: bool = False):
        self.count = check_int("count", count, 1, 64, "requesters")
        self.delayed = delayed
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
        if self.delayed:
            last = Signal(n)  # the grant of the previous cycle, when it was used
            m.d.sync += last.eq(Mux(self.advance, self.grant, 0))
            with m.If(last.any()):
                m.d.sync += upper.eq(~((last - 1) | last))
        else:
            with m.If(self.advance & self.valid):
                # Everything strictly above the granted bit.
                m.d.sync += upper.eq(~((self.grant - 1) | self.grant))
        return m


class AtomicAllocator(Elaboratable):
    """Output allocation of a switch whose requesters need all their outputs at once.

    Each of ``inputs`` requesters asks for a set of ``outputs`` (an atomic multicast: all of them
    in the same cycle, or none). All outputs use one shared rotating priority order, so a
    requester wins every output it asks for exactly when no requester before it in the order
    asks for any of them; in particular the first requester in the order always wins, which
    guarantees progress (separate round-robin arbiters per output can stay out of phase forever
    and starve a multicast). The order starts at requester ``first`` and moves on by one
    requester every cycle, whether anyone went or not (a one-hot ring register: nothing of it
    is on the requests' path), so every requester heads the order once every ``inputs``
    cycles, and a consumer that knows who is first next cycle (``first_next``) can offer its
    oldest work then, which is then sure to win (:class:`router.Router` does).

    A requester that wins but is not ``ready`` does not go, and the outputs it won send nothing
    that cycle (``ready`` is left out of the conflict check to keep it off the longest path).

    Parameters
    ----------
    inputs : int
        Requesters (1 to 16).
    outputs : int
        Outputs (1 to 16).

    Attributes
    ----------
    requests : list of Signal(outputs), in
        ``requests[p]``: the outputs requester ``p`` needs.
    ready : Signal(inputs), in
        Requester ``p`` may go if it wins (e.g. it has credit).
    go : Signal(inputs), out
        Requester ``p`` wins all its outputs and goes this cycle.
    grants : list of Signal(inputs), out
        ``grants[o]``: one-hot, the requester that goes through output ``o`` (zero if none).
    first : Signal(inputs), out
        One-hot: the requester first in this cycle's order (a register; requester 0 after
        reset).
    first_next : Signal(inputs), out
        One-hot: the requester first in the next cycle's order (``first`` rotated by one).
    upper : Signal(inputs)
        Internal state, for the formal proofs: the requesters from ``first`` on (a thermometer
        register kept beside ``first``, so that the conflict check starts at flip-flops).

    Raises
    ------
    TypeError, ValueError
        If a count is not an integer from 1 to 16.
    """

    def __init__(self, inputs: int, outputs: int):
        self.inputs = check_int("inputs", inputs, 1, 16, "requesters")
        self.outputs = check_int("outputs", outputs, 1, 16)
        self.requests = [Signal(outputs, name=f"requests_{p}") for p in range(inputs)]
        self.ready = Signal(inputs)
        self.go = Signal(inputs)
        self.grants = [Signal(inputs, name=f"grants_{o}") for o in range(outputs)]
        self.first = Signal(inputs, init=1)
        self.first_next = Signal(inputs)
        self.upper = Signal(inputs, init=(1 << inputs) - 1)

    def elaborate(self, platform):
        m = Module()
        n = self.inputs
        upper, first = self.upper, self.first
        m.d.comb += self.first_next.eq(first.rotate_left(1))
        m.d.sync += [first.eq(self.first_next),
                     upper.eq(Mux(first[n - 1], (1 << n) - 1, (upper << 1)[:n]))]
        req = self.requests
        for p in range(n):
            blockers = []
            for q in range(n):
                if q == p:
                    continue
                # q comes before p in the order starting at the lowest bit of `upper`.
                before = (upper[q] | ~upper[p]) if q < p else (upper[q] & ~upper[p])
                blockers.append(before & (req[q] & req[p]).any())
            blocked = Cat(blockers).any() if blockers else 0
            m.d.comb += self.go[p].eq(self.ready[p] & req[p].any() & ~blocked)
        for o in range(self.outputs):
            m.d.comb += self.grants[o].eq(Cat(self.go[p] & req[p][o] for p in range(n)))
        return m
