# `make demo` runs the incentive-compatibility stress test on the `paper` preset;
# `make test` runs the test suite. Both create .venv on first use and reuse it.
# `make demo` replaces the results in $(DEMO_OUT) (default results/demo).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= results/demo

.PHONY: demo test install clean-venv

install: $(STAMP)

# torch is installed first and pinned to the CPU build that lies on these machines, so
# that stable-baselines3 does not pull a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/strategic-env stress-test --preset paper --out $(DEMO_OUT) --overwrite

test: $(STAMP)
	$(PYTHON) -m pytest -q

clean-venv:
	rm -rf $(VENV)
