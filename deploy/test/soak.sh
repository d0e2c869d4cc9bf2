#!/usr/bin/env bash
# The J5 reply tests in a loop (a flaky test is a bug): `make soak` runs them 20 times, `make soak N=50` more.
# One throw-away PostgreSQL for the whole loop; each round is a fresh pytest (a fresh Synapse, bot and bridge).
# Prints one line per round and the count; exits non-zero at the first failure, its output kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-20}
tests=(tests/test_bridge_journeys.py::test_hospital_letter_in_and_reply_out
       "tests/test_bridge_journeys.py::test_a_reply_sent_while_the_letter_s_files_are_still_coming_leaves")
pgdir=$(mktemp -d /tmp/liaison-pg.XXXXXX)
cleanup() { deploy/test/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
LIAISON_TEST_PG_URL=$(deploy/test/postgres.sh start "$pgdir")
export LIAISON_TEST_PG_URL
log=$(mktemp /tmp/liaison-soak.XXXXXX)
for i in $(seq "$rounds"); do
  start=$(date +%s)
  if ! .venv/bin/python -m pytest -q -p no:cacheprovider "${tests[@]}" >"$log" 2>&1; then
    echo "J5 : round $i failed after $((i - 1))/$rounds passed; output in $log"
    tail -40 "$log"
    exit 1
  fi
  echo "J5 : round $i passed in $(( $(date +%s) - start )) s"
done
rm -f "$log"
echo "J5 : $rounds/$rounds rounds passed in a row"
