# The two commands of the README. Both set up the environment first (a no-op when done).
#   make demo   full recipe on the built-in corpus (CPU)
#   make test   the test suite (what CI runs)
.PHONY: setup demo test test-all

setup:
	@bash tools/setup_env.sh

demo: setup
	cd egs2/librilight_ae && ./run.sh

test: setup
	.venv/bin/python -m pytest -q -m "not slow" tests

test-all: setup
	.venv/bin/python -m pytest -q tests
