#!/usr/bin/env bash
# Type-checks the code (mypy, configured in pyproject.toml), then runs the test suite with a throw-away PostgreSQL
# cluster on loopback (for the database tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python -m mypy   # ~10 s cold, under a second warm (.mypy_cache)
pgdir=$(mktemp -d /tmp/liaison-pg.XXXXXX)
cleanup() { deploy/test/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
LIAISON_TEST_PG_URL=$(deploy/test/postgres.sh start "$pgdir")
export LIAISON_TEST_PG_URL
.venv/bin/python -m pytest "$@"
