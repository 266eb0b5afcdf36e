# Two commands do everything on a fresh machine:
#   make demo   the main job (creates .venv when missing)
#   make test   every test: pytest over tests/ and nbval over notebooks/
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch release the project is tested with; override with `make test TORCH=torch`.
TORCH ?= torch==2.13.0

.PHONY: demo test figures notebooks student lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# The main job: train the CPU preset on the synthetic scenes, score it with and without the
# CRF, write results/demo/results.md and figures/demo_*.png.
demo: $(VENV)/.installed
	$(PY) -m deeplab_ref demo

# Two pytest workers, one thread each: several threads per worker oversubscribe the cores and
# make small convolutions many times slower. pytest exits 5 when it collects nothing: say so, fail.
test: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadscope; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; fi; exit $$rc

figures: $(VENV)/.installed
	$(PY) -m deeplab_ref.figures

# Re-execute every notebook in place (do this before committing a notebook).
notebooks: $(VENV)/.installed
	$(PY) -m jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb

# Student copies of the course (no solutions, no outputs) in student/, which git ignores.
student: $(VENV)/.installed
	$(PY) -m deeplab_ref.exercises.student_copies notebooks student

lint: $(VENV)/.installed
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
