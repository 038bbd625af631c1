# The two commands of the README, and the full comparison. Each sets up the environment first
# (a no-op when done).
#   make demo    every stage on the built-in corpus at a coffee-break budget (CPU), RESULTS_demo.md
#   make test    the test suite (what CI runs)
#   make study   the built-in miniature of the paper's comparison with its spread (CPU), RESULTS.md
.PHONY: setup demo study test test-all

setup:
	@bash tools/setup_env.sh

demo: setup
	cd egs2/librilight_ae && ./demo.sh

study: setup
	cd egs2/librilight_ae && ./study.sh

test: setup
	.venv/bin/python -m pytest -q -m "not slow" tests

test-all: setup
	.venv/bin/python -m pytest -q tests
