# tgwatch: two commands set everything up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
PYTEST_WORKERS ?= 2

.PHONY: demo test lint format bench clean system-deps replay-deps

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev,faces]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install -e '.[dev,faces,bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(VENV)/bin/tgwatch demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Debian's chromium + CJK fonts for the console browser test, tesseract (kor, eng) for OCR
# (root only; the tests skip without them)
system-deps:
	@if [ -x /usr/bin/chromium ] || [ "$$(id -u)" != 0 ]; then true; \
	else sh scripts/install-browser.sh || echo "chromium could not be installed: the browser test will skip"; fi
	@if command -v tesseract >/dev/null 2>&1 || [ "$$(id -u)" != 0 ]; then true; \
	else sh scripts/install-ocr.sh || echo "tesseract could not be installed: the OCR tests will skip"; fi
	@if [ "$$(id -u)" != 0 ] || $(PY) -c "import vpdq" 2>/dev/null; then true; \
	else sh scripts/install-vpdq.sh $(PY) || echo "vpdq could not be built: the vPDQ compatibility check will skip"; fi

test: lint system-deps replay-deps
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

bench: $(BENCH_STAMP)
	$(PY) bench/run_all.py

# pywb in its own venv (its pins would downgrade tgwatch's werkzeug and cryptography): the replay
# test opens case bundles' web archives with it, and skips when it could not be installed
REPLAY_VENV ?= .venv-replay
replay-deps: $(REPLAY_VENV)/.installed
$(REPLAY_VENV)/.installed: scripts/replay-requirements.txt
	@($(PYTHON) -m venv $(REPLAY_VENV) && $(REPLAY_VENV)/bin/pip install -q -r scripts/replay-requirements.txt \
	  && touch $@) || echo "pywb could not be installed: the replay test will skip"

clean:
	rm -rf $(VENV) $(REPLAY_VENV) .tgwatch .mypy_cache .ruff_cache .pytest_cache
