"""``python -m sim.formal [NAME ...]``: run the formal proofs (all of them by default) and print
one line each; exits 1 if one fails."""

from __future__ import annotations

import sys
import time

from .proofs import ALL


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown proof(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
        return 2
    failed = 0
    for name in names:
        t0 = time.perf_counter()
        result = ALL[name][0]()
        status = "proved" if result.proved else "FAILED"
        print(f"{name:24s} {status}  {time.perf_counter() - t0:6.1f} s")
        if not result.proved:
            failed += 1
            print(result.log)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
