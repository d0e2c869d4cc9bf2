"""The outbox's retry delays: 1 min, 2 min, 4 min… up to 1 h with the defaults."""
from __future__ import annotations

from bridge.deps import BridgeSettings
from bridge.outbox import backoff

DEFAULTS = BridgeSettings(address="liaison@msp.mssante.fr", display_name="MSP", server_name="hs", bot_user_id="@b:hs")
FIRST, MOST = DEFAULTS.retry_first_seconds, DEFAULTS.retry_max_seconds


def test_the_defaults_are_one_minute_and_one_hour():
    assert (FIRST, MOST) == (60, 3600)


def test_delays_double_then_stay_at_the_ceiling():
    assert [backoff(n, FIRST, MOST) for n in range(10)] == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]


def test_a_huge_attempt_count_does_not_overflow_the_ceiling():
    assert backoff(10_000, FIRST, MOST) == 3600
    assert backoff(10_000, 1, 10**9) == 2 ** 20, "the exponent itself is capped"


def test_other_settings():
    assert [backoff(n, 1, 2) for n in range(4)] == [1, 2, 2, 2]
