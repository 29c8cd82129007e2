from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from digest.models import Subscriber
from digest.schedule import due, due_day, next_send


def sub(zone: str, at: str = "07:00", **kw) -> Subscriber:
    return Subscriber(
        id=kw.pop("id", "x"), email="x@example.org", keywords=("k",), timezone=zone, send_time=at, **kw
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "now", "expected_utc"),
    [
        # New York springs forward on 2026-03-08: 07:00 EST is 12:00Z, 07:00 EDT is 11:00Z
        ("America/New_York", utc(2026, 3, 7, 13), utc(2026, 3, 8, 11)),
        ("America/New_York", utc(2026, 3, 8, 12), utc(2026, 3, 9, 11)),
        # ... and falls back on 2026-11-01: 07:00 EDT is 11:00Z, 07:00 EST is 12:00Z
        ("America/New_York", utc(2026, 10, 31, 12), utc(2026, 11, 1, 12)),
        ("America/New_York", utc(2026, 11, 1, 11, 30), utc(2026, 11, 1, 12)),
        # Berlin: 2026-03-29 and 2026-10-25
        ("Europe/Berlin", utc(2026, 3, 28, 7), utc(2026, 3, 29, 5)),
        ("Europe/Berlin", utc(2026, 10, 24, 6), utc(2026, 10, 25, 6)),
        # Kolkata: +05:30, no DST
        ("Asia/Kolkata", utc(2026, 6, 1, 0), utc(2026, 6, 1, 1, 30)),
        # Auckland: ahead of UTC, so its morning is the previous UTC evening; DST ends 2026-04-05
        # (NZDT, UTC+13, until 2026-04-05 03:00 local; then NZST, UTC+12)
        ("Pacific/Auckland", utc(2026, 4, 2, 19), utc(2026, 4, 3, 18)),
        ("Pacific/Auckland", utc(2026, 4, 3, 19), utc(2026, 4, 4, 19)),
    ],
)
def test_next_send_is_the_local_morning_across_dst_switches(zone: str, now: datetime, expected_utc: datetime):
    assert next_send(sub(zone), now).astimezone(UTC) == expected_utc
    assert next_send(sub(zone), now).hour == 7


def test_a_send_time_that_a_dst_switch_skips_moves_forward_by_the_gap():
    when = next_send(sub("America/New_York", "02:30"), utc(2026, 3, 8, 0))
    assert when.astimezone(UTC) == utc(2026, 3, 8, 7, 30)
    assert when.astimezone(ZoneInfo("America/New_York")).hour == 3


def test_due_day_is_the_local_date_once_the_send_time_has_passed():
    auckland = sub("Pacific/Auckland")
    assert due_day(auckland, utc(2026, 11, 20, 17, 59)) is None  # 06:59 on the 21st there
    assert due_day(auckland, utc(2026, 11, 20, 18, 0)) == date(2026, 11, 21)
    assert due_day(sub("America/New_York"), utc(2026, 11, 21, 3)) == date(2026, 11, 20)  # 22:00 the same day
    assert due_day(sub("America/New_York"), utc(2026, 11, 21, 6)) is None  # 01:00 on the 21st


def test_a_machine_that_slept_through_the_send_time_sends_once_late_not_twice():
    alice = sub("Europe/Berlin", "07:30", id="alice")
    later = utc(2026, 11, 20, 15)  # 16:00 in Berlin
    assert due([alice], later, {}) == {date(2026, 11, 20): [alice]}
    assert due([alice], later, {"alice": {date(2026, 11, 20)}}) == {}


def test_a_day_missed_entirely_is_one_digest_the_next_morning_not_two():
    alice = sub("Europe/Berlin", "07:30", id="alice")
    sent = {"alice": {date(2026, 11, 18)}}  # the 19th was missed: the machine was off all day
    assert due([alice], utc(2026, 11, 20, 7), sent) == {date(2026, 11, 20): [alice]}


def test_inactive_subscribers_are_never_due():
    assert due([sub("UTC", active=False)], utc(2026, 11, 20, 12), {}) == {}


def test_subscribers_in_different_zones_are_grouped_by_their_local_day():
    tokyo, la = sub("Asia/Tokyo", id="t"), sub("America/Los_Angeles", id="l")
    groups = due([tokyo, la], utc(2026, 11, 20, 16), {})  # Tokyo 01:00 on the 21st, LA 08:00 on the 20th
    assert groups == {date(2026, 11, 20): [la]}


def test_apscheduler_cron_trigger_agrees_with_next_send():
    from apscheduler.triggers.cron import CronTrigger

    for zone in ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "Pacific/Auckland"):
        for now in (utc(2026, 3, 7, 13), utc(2026, 3, 28, 7), utc(2026, 10, 31, 12), utc(2026, 4, 3, 19)):
            trigger = CronTrigger(hour=7, minute=0, timezone=ZoneInfo(zone))
            assert trigger.get_next_fire_time(None, now) == next_send(sub(zone), now), (zone, now)
