# Two commands for a new user: `make run` (the app on the shipped model) and `make test`.
# Both create .venv on first use and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: run test bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements-dev.txt $(VENV)/.deps
	$(BIN)/pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.deps
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python app.py --host $(HOST) --port $(PORT)

test: $(VENV)/.dev-deps
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.deps
	$(BIN)/python -m pix2pix bench --ngf 64
	$(BIN)/python -m pix2pix bench --ngf 32

clean-venv:
	rm -rf $(VENV)
