# `make demo` and `make test` each create .venv (if missing) and install the
# project with its extras from setup.cfg before running.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keras-cd-installed

.PHONY: install train demo test test-jax test-torch lint clean

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

test: $(STAMP)
	$(BIN)/python -m pytest

# The backend-agnostic tests again on JAX (TensorFlow-only ones are skipped there).
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest tests -p no:cacheprovider

# Best effort, not in CI (large wheels): first pip install "torch==2.13.0+cpu" into .venv.
test-torch: $(STAMP)
	KERAS_BACKEND=torch $(BIN)/python -m pytest tests -p no:cacheprovider

# One style, checked: ruff's linter and formatter, configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
