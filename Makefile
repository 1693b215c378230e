PY ?= python3

.PHONY: test check lint type unit slow bench demo

test:  ## install what the tests need, then run the whole default test suite
	./scripts/install-test-deps && $(PY) -m pytest -q

check: lint type unit

lint:
	$(PY) -m ruff check wafproxy tests bench && $(PY) -m ruff format --check wafproxy

type:
	$(PY) -m mypy --strict wafproxy

unit:
	$(PY) -m pytest -q

slow:
	$(PY) -m pytest -q -m slow

bench:
	$(PY) bench/throughput.py && $(PY) bench/engine.py

demo:
	$(PY) -m pip install -q . && wafproxy demo
