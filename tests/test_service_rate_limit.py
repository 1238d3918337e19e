"""Rate limits (GCRA) and the brake on failed authentication, on a clock moved by hand."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from service.rate_limit import Decision, FailedAuthTracker, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate_holds() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.check("k").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.check("k")
    assert refused.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed


def test_callers_have_their_own_allowance() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=Clock())
    assert limiter.check("alice").allowed
    assert not limiter.check("alice").allowed
    assert limiter.check("bob").allowed


def test_a_rested_caller_gets_the_whole_burst_back_and_no_more() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    assert limiter.check("k").allowed and limiter.check("k").allowed
    clock.now += 3600
    assert [limiter.check("k").allowed for _ in range(3)] == [True, True, False]


def test_refusals_do_not_use_up_the_allowance() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    limiter.check("k")
    for _ in range(10):
        assert not limiter.check("k").allowed
    clock.now += 1
    assert limiter.check("k").allowed


def test_retry_after_header_is_whole_seconds_rounded_up() -> None:
    assert Decision(allowed=False, retry_after=0.2).retry_after_header == "1"
    assert Decision(allowed=False, retry_after=1.0).retry_after_header == "1"
    assert Decision(allowed=False, retry_after=1.01).retry_after_header == "2"


def test_concurrent_checks_allow_exactly_the_burst() -> None:
    limiter = RateLimiter(rate=1, burst=50, clock=Clock())
    with ThreadPoolExecutor(8) as pool:
        allowed = sum(pool.map(lambda _: limiter.check("k").allowed, range(400)))
    assert allowed == 50


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate=1, burst=0)


def tracker(clock: Clock) -> FailedAuthTracker:
    return FailedAuthTracker(
        threshold=5, window=60, penalty=30, max_penalty=100, forget_after=600, clock=clock
    )


def test_five_failures_in_a_minute_block_the_client() -> None:
    clock = Clock()
    brake = tracker(clock)
    assert all(brake.failed("10.0.0.1").allowed for _ in range(4))
    assert brake.blocked("10.0.0.1").allowed
    fifth = brake.failed("10.0.0.1")
    assert not fifth.allowed and fifth.retry_after == 30
    clock.now += 10
    assert brake.blocked("10.0.0.1").retry_after == pytest.approx(20)
    assert brake.blocked("10.0.0.2").allowed
    clock.now += 20
    assert brake.blocked("10.0.0.1").allowed


def test_failures_spread_over_more_than_the_window_do_not_block() -> None:
    clock = Clock()
    brake = tracker(clock)
    for _ in range(20):
        assert brake.failed("c").allowed
        clock.now += 15  # four in any minute


def test_the_block_grows_with_each_repeat_up_to_the_cap() -> None:
    clock = Clock()
    brake = tracker(clock)
    penalties = []
    for _ in range(4):
        for _ in range(5):
            decision = brake.failed("c")
        penalties.append(decision.retry_after)
        clock.now += decision.retry_after
    assert penalties == [30, 60, 100, 100]


def test_a_quiet_client_is_forgiven_and_a_success_forgives_at_once() -> None:
    clock = Clock()
    brake = tracker(clock)
    for _ in range(5):
        brake.failed("c")
    clock.now += 600 + 30
    for _ in range(5):
        decision = brake.failed("c")
    assert decision.retry_after == 30  # the first block again, not the second
    clock.now += 30
    for _ in range(4):
        brake.failed("c")
    brake.succeeded("c")
    assert brake.failed("c").allowed


def test_the_tables_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.rate_limit.MAX_TRACKED", 10)
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    brake = tracker(clock)
    for n in range(25):
        limiter.check(f"caller-{n}")
        brake.failed(f"client-{n}")
    assert len(limiter._arrival) <= 10
    assert len(brake._clients) <= 10
    full = RateLimiter(rate=1, burst=1, clock=clock)
    for n in range(10):
        full.check(f"caller-{n}")
    clock.now += 3600  # all at rest: forgotten first, and a newcomer starts afresh
    assert full.check("late").allowed
    assert list(full._arrival) == ["late"]
