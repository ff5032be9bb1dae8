# openwafer developer entry points. Every target uses `python` from the active environment
# (override with `make PYTHON=/path/to/python ...`).
#
#   make install                 pip install -e ".[dev]"
#   make test                    pytest (PYTEST_ARGS="-m slow" etc.)
#   make synth                   synthesise every default design in synth/designs.py
#   make synth-variants          the trade-off variants (registered router outputs)
#   make synth DESIGNS=router    ... or only some (space- or comma-separated)
#   make synth SYNTH_ARGS=--no-pnr   extra flags for synth/run.py (--freq, --seed, --timeout)
#   make formal                  run every formal proof (python -m sim.formal)
#   make bench                   run every bench/*.py (with --json where supported)
#   make clean                   remove build/ and caches (keeps synth/reports/)

PYTHON ?= python
DESIGNS ?=
SYNTH_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help install test synth synth-list synth-variants formal bench clean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

install:
	$(PYTHON) -m pip install -e ".[dev]"

test:
	$(PYTHON) -m pytest $(PYTEST_ARGS)

synth:
	$(PYTHON) synth/run.py $(DESIGNS) $(SYNTH_ARGS)

synth-list:
	@$(PYTHON) synth/run.py --list

synth-variants:
	$(PYTHON) synth/run.py tile_outreg fabric1x1_outreg $(SYNTH_ARGS)

formal:
	$(PYTHON) -m sim.formal

# Each bench script prints its figures; the output is also kept in build/bench/<script>.json
# (or .txt for a script without a --json option). Files starting with "_" are helpers.
bench:
	@mkdir -p build/bench; \
	found=0; \
	for f in bench/*.py; do \
	  [ -e "$$f" ] || continue; \
	  case "$$(basename $$f)" in _*) continue;; esac; \
	  found=1; name=$$(basename $$f .py); \
	  if grep -q -- '--json' "$$f"; then flag=--json; out=build/bench/$$name.json; \
	  else flag=; out=build/bench/$$name.txt; fi; \
	  echo "== $$f $$flag"; \
	  $(PYTHON) "$$f" $$flag > "$$out" || { echo "bench $$f failed" >&2; exit 1; }; \
	  cat "$$out"; \
	done; \
	[ $$found = 1 ] || echo "no bench scripts in bench/"

clean:
	rm -rf build .pytest_cache .ruff_cache
	find . -path ./.venv -prune -o -path ./.git -prune -o -name __pycache__ -type d -prune \
	  -exec rm -rf {} +
