"""A repository's delivery report: the window and each of its weeks, with DORA's bands.

The bands are the software delivery performance clusters of DORA's 2024 Accelerate State of
DevOps report. Only thresholds that report states are used:
- deployment frequency: elite on demand (several a day), high between once a day and once a
  week, medium between once a week and once a month, low less often;
- lead time for changes: elite under a day, high a day to a week, medium a week to a month,
  low over a month;
- failed deployment recovery time: elite under an hour; high and medium both under a day;
  low between a week and a month (a day to a week falls between clusters: no band).
Its change failure rates are typical values, not thresholds (elite 5%, high 20%, medium 10%,
low 40%, so not even ordered), and it gives rework rate no clusters: those two get no band.
"""

from dataclasses import dataclass

from bot.core.flow import Flow, flow
from bot.core.metrics import Dora, History, dora
from bot.core.records import DAY, WEEK, Records

HOUR = 3600.0
MONTH = 30 * DAY
REPORT_YEAR = 2024
CFR_CLUSTERS = "elite 5%, high 20%, medium 10%, low 40%"


@dataclass(frozen=True)
class Period:
    """The metrics of one stretch of time."""

    start: float
    end: float
    dora: Dora
    flow: Flow


@dataclass(frozen=True)
class Report:
    """One repository's metrics over the window, and week by week (oldest first)."""

    repository: str
    production: str
    total: Period
    weeks: tuple[Period, ...]


def measure(repository: str, records: Records, end: float, weeks: int) -> Report:
    """Measure the `weeks` weeks that end at `end`, in total and week by week."""
    history = History(records)
    start = end - weeks * WEEK
    bounds = [(start + i * WEEK, start + (i + 1) * WEEK) for i in range(weeks)]
    return Report(
        repository,
        records.production,
        Period(start, end, dora(history, start, end), flow(history, start, end)),
        tuple(Period(s, e, dora(history, s, e), flow(history, s, e)) for s, e in bounds),
    )


def frequency_band(per_day: float) -> str:
    """Band a deployment frequency (deployments a day)."""
    if per_day > 1:
        return "elite"
    if per_day * 7 >= 1:
        return "high"
    return "medium" if per_day * 30 >= 1 else "low"


def lead_band(seconds: float | None) -> str | None:
    """Band a median lead time."""
    if seconds is None:
        return None
    if seconds < DAY:
        return "elite"
    if seconds <= WEEK:
        return "high"
    return "medium" if seconds <= MONTH else "low"


def recovery_band(seconds: float | None) -> str | None:
    """Band a median recovery time (None between a day and a week: no cluster there)."""
    if seconds is None:
        return None
    if seconds < HOUR:
        return "elite"
    if seconds < DAY:
        return "high or medium"
    return "low" if seconds >= WEEK else None
