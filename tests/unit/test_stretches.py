"""How `c360 materialize` groups landing days with work into bronze runs."""

import datetime as dt

from c360_assets.runner import BRIDGE_DAYS, stretches

D = dt.date(2026, 1, 1)


def day(i: int) -> dt.date:
    return D + dt.timedelta(days=i)


def test_consecutive_and_nearby_days_share_a_run_distant_ones_do_not():
    assert stretches(set()) == []
    assert stretches({day(0)}) == [(day(0), day(0))]
    assert stretches({day(2), day(0), day(1)}) == [(day(0), day(2))]
    near = 1 + BRIDGE_DAYS  # BRIDGE_DAYS days between: bridged
    assert stretches({day(0), day(near)}) == [(day(0), day(near))]
    assert stretches({day(0), day(near + 1)}) == [(day(0), day(0)), (day(near + 1), day(near + 1))]


def test_ten_days_over_two_years_are_ten_one_day_runs():
    days = {day(73 * i) for i in range(10)}
    got = stretches(days)
    assert got == [(d, d) for d in sorted(days)]
