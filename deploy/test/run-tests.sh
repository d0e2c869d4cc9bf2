#!/usr/bin/env bash
# Runs the test suite with a throw-away PostgreSQL cluster on loopback (for the database tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
pgdir=$(mktemp -d /tmp/liaison-pg.XXXXXX)
cleanup() { deploy/test/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
LIAISON_TEST_PG_URL=$(deploy/test/postgres.sh start "$pgdir")
export LIAISON_TEST_PG_URL
.venv/bin/python -m pytest "$@"
