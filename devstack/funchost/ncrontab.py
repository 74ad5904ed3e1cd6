"""NCRONTAB schedules as Azure Functions timers use them: six fields, seconds first, evaluated in UTC.

    {second} {minute} {hour} {day} {month} {day-of-week}

Each field takes `*`, a number, a list `a,b`, a range `a-b` and a step `*/n` or `a-b/n` (a single
number with a step, `a/n`, means `a-max/n`). Months and days of the week also take English names
(`Jan`, `Mon`); Sunday is 0 (7 is accepted too). Like the NCrontab library the host uses, a time
matches only when BOTH the day-of-month and the day-of-week fields match (classic cron uses OR).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import ScheduleError

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_DAYS = {name: number for number, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_SEARCH_YEARS = 30  # Feb 29 on a given weekday recurs within 28 years


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("second", 0, 59, {}),
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _DAYS),
)


def _number(text: str, field: _Field, expression: str) -> int:
    value = field.names.get(text.lower()) if field.names else None
    if value is None:
        if not text.isdigit():
            raise ScheduleError(f"invalid {field.name} value {text!r} in schedule {expression!r}")
        value = int(text)
    if not field.low <= value <= field.high:
        raise ScheduleError(
            f"{field.name} value {value} out of range {field.low}-{field.high} in schedule {expression!r}"
        )
    return value


def _parse_field(text: str, field: _Field, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"empty list item in the {field.name} field of schedule {expression!r}")
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"invalid step {step_text!r} in the {field.name} field of schedule {expression!r}")
            step = int(step_text)
        if span == "*":
            start, stop = field.low, field.high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, stop = _number(first, field, expression), _number(last, field, expression)
            if start > stop:
                raise ScheduleError(f"reversed range {span!r} in the {field.name} field of schedule {expression!r}")
        else:
            start = _number(span, field, expression)
            stop = field.high if step_text else start
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class NCrontab:
    """A parsed six-field schedule; `next_after` gives the next occurrence strictly after a time."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> NCrontab:
        parts = expression.split()
        if len(parts) != len(_FIELDS):
            raise ScheduleError(
                f"schedule {expression!r} has {len(parts)} fields; an NCRONTAB timer schedule needs 6: "
                "second minute hour day month day-of-week (e.g. '0 */5 * * * *')"
            )
        fields = [_parse_field(part, field, expression) for part, field in zip(parts, _FIELDS, strict=True)]
        seconds, minutes, hours, days, months, weekdays = fields
        days_of_week = frozenset(day % 7 for day in weekdays)  # 7 is Sunday too
        schedule = cls(expression, seconds, minutes, hours, days, months, days_of_week)
        schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # rejects schedules that never fire (Feb 30)
        return schedule

    def matches(self, moment: datetime) -> bool:
        moment = _as_utc(moment)
        return (
            moment.second in self.seconds
            and moment.minute in self.minutes
            and moment.hour in self.hours
            and self._day_matches(moment)
        )

    def _day_matches(self, moment: datetime) -> bool:
        weekday = (moment.weekday() + 1) % 7  # Python: Monday=0; cron: Sunday=0
        return moment.month in self.months and moment.day in self.days and weekday in self.days_of_week

    def next_after(self, moment: datetime) -> datetime:
        """The first matching whole second strictly after `moment` (a naive time is taken as UTC)."""
        moment = _as_utc(moment)
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = candidate.year + _SEARCH_YEARS
        while candidate.year <= limit:
            if not self._day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            hour = _first_at_least(self.hours, candidate.hour)
            if hour is None:
                candidate = candidate.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            if hour != candidate.hour:
                candidate = candidate.replace(hour=hour, minute=0, second=0)
            minute = _first_at_least(self.minutes, candidate.minute)
            if minute is None:
                candidate = candidate.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if minute != candidate.minute:
                candidate = candidate.replace(minute=minute, second=0)
            second = _first_at_least(self.seconds, candidate.second)
            if second is None:
                candidate = candidate.replace(second=0) + timedelta(minutes=1)
                continue
            return candidate.replace(second=second)
        raise ScheduleError(f"schedule {self.expression!r} has no occurrence within {_SEARCH_YEARS} years")

    def next_occurrences(self, moment: datetime, count: int) -> list[datetime]:
        times: list[datetime] = []
        for _ in range(count):
            moment = self.next_after(moment)
            times.append(moment)
        return times

    def __str__(self) -> str:
        return self.expression


def _first_at_least(values: frozenset[int], minimum: int) -> int | None:
    return min((value for value in values if value >= minimum), default=None)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
