# The README's two set-up commands. Each makes (or reuses) .venv with lvd installed,
# on a machine that has nothing but Python 3.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint install clean

install: $(STAMP)

# torch and torchvision come as the pinned pair in constraints.txt (see README).
$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lvd demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q -ra

lint: $(STAMP)
	$(VENV)/bin/ruff check curate model pipelines tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
