# Liaison — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench soak reference install clean

# pip's output goes to a log; the terminal shows one line (and the log's end when it fails).
INSTALL_LOG := .liaison/logs/install.log

$(BIN)/.installed: pyproject.toml
	@umask 077; mkdir -p $(dir $(INSTALL_LOG))
	@printf '[liaison] installation des dépendances (journal : %s)… ' $(INSTALL_LOG)
	@{ test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	   $(BIN)/python -m pip install --upgrade pip && \
	   $(BIN)/python -m pip install -e '.[stack,test]'; } >$(INSTALL_LOG) 2>&1 \
	 || { echo échec; tail -n 30 $(INSTALL_LOG); exit 1; }
	@echo faite
	@touch $@

tests/element/node_modules/.installed: tests/element/package-lock.json
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm)
	cd tests/element && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed

## The whole local stack in the foreground: Synapse, the bot, demo accounts (Ctrl-C stops it).
run: $(BIN)/.installed
	@$(BIN)/liaison up

## The test suite, against a real Synapse and real SQLite + PostgreSQL.
test: $(BIN)/.installed tests/element/node_modules/.installed
	deploy/test/run-tests.sh $(ARGS)

## Latency and memory benchmark (not part of the tests' pass/fail).
bench: $(BIN)/.installed
	$(BIN)/python -m tests.bench.run $(ARGS)

## The J5 reply tests 20 times in a row (`make soak N=50` for more): a flaky test is a bug.
soak: $(BIN)/.installed tests/element/node_modules/.installed
	deploy/test/soak.sh $(or $(N),20)

## The README's command reference, rewritten from the commands' declarations (a test checks it is current).
reference: $(BIN)/.installed
	$(BIN)/python -m bot.reference

clean:
	rm -rf .liaison .pytest_cache
