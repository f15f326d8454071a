# GRU course. Two commands do all the set-up on a fresh machine with Python >= 3.10:
#   make lab    install into .venv (when requirements.txt changed), then open the course in JupyterLab
#   make test   install, then run every test
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ARGS ?=
# Two workers; --dist loadfile keeps each notebook's nbval cells (which share one kernel) on one worker.
PYTEST_ARGS ?= -n 2 --dist loadfile
# Tools installed in the course environment (nbgrader, jupyter, alembic) come first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install lab test test-gpu release outputs benchmark
.PHONY: collect autograde feedback export benchmark-grading

help:
	@echo "make lab      install, then open the course in JupyterLab (ARGS='--no-browser --port=8888' for a server)"
	@echo "make test     install, then run every test"
	@echo "make test-gpu rerun every solutions notebook on CUDA and compare it with its stored outputs (needs a GPU)"
	@echo "make release [CLASS=1]  regenerate the student notebooks in notebooks/ from solutions/ (and the README course map); CLASS=1: for a graded class, without the lessons' working versions"
	@echo "make outputs  rerun the solutions notebooks and store their outputs (LESSONS='01-gru-math' for some)"
	@echo "make benchmark  time each solutions notebook"
	@echo "make collect FROM=dir-or.zip   instructors: import LMS downloads (<student>_<lesson>.ipynb) into grading/submitted/"
	@echo "make autograde [LESSON=..] [JOBS=N] [FORCE=1] [SHARD=i/N]   grade every submission, JOBS students at once (default: cores); SHARD: this host's part of the class"
	@echo "make feedback  HTML feedback per student and lesson in grading/feedback/ (hidden tests stay hidden)"
	@echo "make export [CANVAS=export.csv]   grading/grades.csv, the class summary in grading/summary/, Canvas and Moodle CSVs in grading/lms/"
	@echo "make benchmark-grading  time autograde on a synthetic class (JOBS=1 and 2, sandbox off and on)"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: '$(PYTHON)' not found. Install Python 3.10 or newer, or run: make $(MAKECMDGOALS) PYTHON=/path/to/python3" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "error: the course needs Python 3.10 or newer, but '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Run: make $(MAKECMDGOALS) PYTHON=python3.11" >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV) with '$(PYTHON) -m venv' (on Debian/Ubuntu: apt install python3-venv)" >&2; exit 1; }

# Reinstalls only when requirements.txt is newer than the last successful install.
# Then removes rfc3987-syntax, an optional part of jsonschema (jupyter-events asks for it) that compiles about 35
# grammars on import: some 1.5 s in every process that imports nbformat (each nbgrader command, grading worker and
# alembic call). It checks only the "iri" string format, which no notebook or Jupyter schema uses
# (python-jsonschema/jsonschema#1428); without it jsonschema skips that one check.
$(INSTALLED): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax
	@touch $@

install: $(INSTALLED)

# Jupyter refuses to run as root unless told; containers (Docker, CI) often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)/notebooks" $(ALLOW_ROOT) $(ARGS)

# Stored outputs are made and checked the same way: one thread each (two test workers share the machine's cores,
# and thread counts change float sums), and PyTorch's AVX2 kernels on x86 even where the CPU has AVX-512, whose
# kernels round differently (a 500-step training run in Lesson 01 ends at another accuracy).
REPRODUCIBLE := OMP_NUM_THREADS=1 ATEN_CPU_CAPABILITY=avx2

test: install
	$(REPRODUCIBLE) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Not part of `make test` (CI has no GPU). nbval reads one sanitize file: the CPU one joined with the GPU one.
GPU_SANITIZE := tests/artifacts/nbval_sanitize_gpu_joined.cfg
test-gpu: install
	@$(BIN)/python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' || { echo "error: make test-gpu runs every notebook on CUDA, but this PyTorch sees no CUDA GPU (torch.cuda.is_available() is False). Run it on a machine with an NVIDIA GPU, where pip installs PyTorch with CUDA on Linux." >&2; exit 1; }
	@$(BIN)/python -c 'import torch; print("test-gpu on", torch.cuda.get_device_name(0), "with PyTorch", torch.__version__, "CUDA", torch.version.cuda)'
	@mkdir -p $(dir $(GPU_SANITIZE)) && cat tests/nbval_sanitize.cfg tests/nbval_sanitize_gpu.cfg > $(GPU_SANITIZE)
	$(REPRODUCIBLE) $(BIN)/python -m pytest solutions $(PYTEST_ARGS) --nbval-sanitize-with $(GPU_SANITIZE)

release: install
	$(BIN)/python -m tools.release $(if $(CLASS),--class)

outputs: install
	$(REPRODUCIBLE) $(BIN)/python -m tools.run_solutions $(LESSONS)

benchmark: install
	$(BIN)/python -m tools.benchmark_notebooks

# Instructor grading toolkit (grading/toolkit/; the instructors' guide: grading/README.md). COURSE_CELL_TIMEOUT,
# COURSE_KERNEL_MEMORY, COURSE_SUBMISSION_TIMEOUT, COURSE_DB_URL, COURSE_SANDBOX and the other COURSE_* settings pass
# through the environment (or as make variables). Exit status of autograde: 0 graded (every submission has a grade or
# a recorded reason), 1 grading itself failed for some, 2 did not start, 130 interrupted.
# Grading needs bubblewrap (apt-get install bubblewrap): every grading kernel runs in its sandbox.
collect: install
	@test -n "$(FROM)" || { echo "error: make collect needs FROM=<folder or .zip of downloaded submissions>" >&2; exit 2; }
	$(BIN)/python -m grading.toolkit collect "$(FROM)"

autograde: install
	$(BIN)/python -m grading.toolkit autograde $(if $(LESSON),--lesson "$(LESSON)") $(if $(JOBS),--jobs $(JOBS)) $(if $(FORCE),--force) $(if $(SHARD),--shard "$(SHARD)")

feedback: install
	$(BIN)/python -m grading.toolkit feedback $(if $(LESSON),--lesson "$(LESSON)")

export: install
	$(BIN)/python -m grading.toolkit export $(if $(CANVAS),--canvas "$(CANVAS)")

benchmark-grading: install
	$(BIN)/python -m grading.toolkit.benchmark $(ARGS)
