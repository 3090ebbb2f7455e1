# `make demo` and `make test` each create .venv (if missing) and install the
# project with its extras from setup.cfg before running.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keras-cd-installed
# PyTorch's CPU-only wheel, pinned (see install-torch below).
TORCH_VERSION := 2.13.0+cpu
TORCH_STAMP := $(VENV)/.keras-cd-torch-$(TORCH_VERSION)

.PHONY: install install-torch train demo test test-slow test-jax test-torch lint docs dist clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e ".[tensorflow,test,examples,export,data,docs]"
	touch $(STAMP)

# The main job: CIFAR-10 through tensorflow-datasets. Offline: make train ARGS="--dataset digits"
train: $(STAMP)
	$(BIN)/python examples/train_cifar.py $(ARGS)

demo: $(STAMP)
	$(BIN)/python benchmarks/robustness.py --demo

# Two test processes (pytest-xdist), one per core, an idle one taking queued tests
# from the other (worksteal); the slowest 15 tests listed.
PYTEST := $(BIN)/python -m pytest -n 2 --dist worksteal --durations=15

test: $(STAMP)
	$(PYTEST)

# End-to-end runs in fresh processes (kill and resume, multi-worker clusters,
# other backends in a subprocess, PyTorch's among them): CI runs them; `make test`
# leaves them out.
test-slow: $(TORCH_STAMP)
	$(PYTEST) -m slow

# The backend-dependent tests again on JAX (TensorFlow-only and backend-independent
# modules are not collected there; see tests/conftest.py). Eager JAX compiles every
# operation for every new shape, and XLA's optimization passes, not the tiny
# computations, dominate these tests' time: they run with most of XLA's
# optimizations off (same results up to float rounding). The slow tier runs JAX
# with the optimizations on (the Cora protocol, the trainers without TensorFlow).
test-jax: $(STAMP)
	KERAS_BACKEND=jax JAX_DISABLE_MOST_OPTIMIZATIONS=1 $(PYTEST) tests -p no:cacheprovider

# PyTorch's CPU-only wheel, pinned. The local version +cpu can only resolve to the CPU
# build, so pip fails rather than pull CUDA libraries (an unpinned `torch` brings several
# GB of nvidia-* wheels); the recipe checks that none came in. Where the index in use has
# no +cpu builds (PyPI), add PyTorch's CPU wheel index:
#   make test-torch TORCH_PIP_ARGS="--extra-index-url INDEX"
TORCH_PIP_ARGS ?=

install-torch: $(TORCH_STAMP)

$(TORCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check $(TORCH_PIP_ARGS) "torch==$(TORCH_VERSION)"
	@if $(BIN)/python -m pip list --disable-pip-version-check | grep -i '^nvidia'; then \
		echo "CUDA libraries in $(VENV): install the CPU-only torch==$(TORCH_VERSION)" >&2; exit 1; fi
	touch $(TORCH_STAMP)

# The backend-dependent tests again on PyTorch (CPU), collected as for JAX. One
# intra-op thread per test process: two processes share the two cores, and
# PyTorch's eager steps slow down several-fold when threads compete.
test-torch: $(TORCH_STAMP)
	KERAS_BACKEND=torch OMP_NUM_THREADS=1 $(PYTEST) tests -p no:cacheprovider

# One style, checked: ruff's linter and formatter, configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (MkDocs, Material, mkdocstrings) into build/site; a broken
# reference or link, or a docstring the API reference cannot render, fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

# The release artifacts: wheel and sdist built and checked by twine; the wheel
# installed into a clean environment with the JAX backend only (no TensorFlow),
# where `import keras_cd` and a CDBlock call must work.
DIST_ENV := build/dist-env
dist: $(STAMP)
	rm -rf dist $(DIST_ENV)
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*
	$(PYTHON) -m venv $(DIST_ENV)
	$(DIST_ENV)/bin/python -m pip install --disable-pip-version-check "$$(ls dist/*.whl)[jax]"
	cd $(DIST_ENV) && KERAS_BACKEND=jax bin/python $(CURDIR)/.ci/check_dist.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
