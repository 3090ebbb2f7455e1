# `make demo` and `make test` each create .venv (if missing) and install the
# project with its extras from setup.cfg before running.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keras-cd-installed

.PHONY: install train demo test test-slow test-jax test-torch lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e ".[tensorflow,test,examples,export,data]"
	touch $(STAMP)

# The main job: CIFAR-10 through tensorflow-datasets. Offline: make train ARGS="--dataset digits"
train: $(STAMP)
	$(BIN)/python examples/train_cifar.py $(ARGS)

demo: $(STAMP)
	$(BIN)/python benchmarks/robustness.py --demo

# Two test processes (pytest-xdist), one per core; the slowest 15 tests listed.
PYTEST := $(BIN)/python -m pytest -n 2 --durations=15

test: $(STAMP)
	$(PYTEST)

# End-to-end runs in fresh processes (kill and resume, multi-worker clusters,
# other backends in a subprocess): CI runs them; `make test` leaves them out.
test-slow: $(STAMP)
	$(PYTEST) -m slow

# The backend-dependent tests again on JAX (TensorFlow-only and backend-independent
# modules are not collected there; see tests/conftest.py).
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PYTEST) tests -p no:cacheprovider

# Best effort, not in CI (large wheels): first pip install "torch==2.13.0+cpu" into .venv.
test-torch: $(STAMP)
	KERAS_BACKEND=torch $(PYTEST) tests -p no:cacheprovider

# One style, checked: ruff's linter and formatter, configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
