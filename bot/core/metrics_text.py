"""The delivery report as people and tools read it: Slack mrkdwn, digest lines, table, CSV, JSON."""

import csv
import io
import time
from collections.abc import Sequence
from typing import Any

from bot.core.report import (
    CFR_CLUSTERS,
    REPORT_YEAR,
    Period,
    Report,
    frequency_band,
    lead_band,
    recovery_band,
)
from bot.core.text import duration, escape

CSV_COLUMNS = (
    "repository",
    "from",
    "to",
    "deployments",
    "deployments_per_day",
    "lead_time_median_s",
    "lead_time_p90_s",
    "commits_measured",
    "changes",
    "failed_changes",
    "change_failure_rate",
    "recovery_median_s",
    "rework",
    "rework_rate",
    "builds",
    "failed_builds",
    "red_share",
    "builds_never_in_production",
)


def day(at: float) -> str:
    """Show a date: 2026-11-26."""
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def percent(share: float | None) -> str:
    """Show a share as a whole percentage ('n/a' when there was nothing to divide)."""
    return "n/a" if share is None else f"{share * 100:.0f}%"


def plural(count: int, word: str) -> str:
    """Say '1 commit', '2 commits', '1 recovery', '3 recoveries'."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def _band(name: str | None) -> str:
    return f" — *{name}* (DORA {REPORT_YEAR})" if name else ""


def dora_lines(report: Report, period: Period) -> list[str]:
    """Say the five DORA metrics of a period, each with its band."""
    d, prod = period.dora, report.production
    weeks = max((period.end - period.start) / (7 * 86400), 1e-9)
    if not d.deployments and not d.changes:
        deployed = f"• Deployment frequency: no deployment to {prod} in this window"
    else:
        deployed = (
            f"• Deployment frequency: {d.deployments} to {prod} ({d.deployments / weeks:.1f} a"
            f" week){_band(frequency_band(d.per_day))}"
        )
    lead = "no commit reached production in this window"
    if d.lead_median is not None:
        lead = (
            f"median {duration(d.lead_median)}, p90 {duration(d.lead_p90 or 0)}"
            f" ({plural(len(d.lead_times), 'commit')}){_band(lead_band(d.lead_median))}"
        )
    cfr = f"{d.failed_changes} of {d.changes} ({percent(d.change_failure_rate)})"
    cfr += f": {d.failed} failed, {d.rolled_back} rolled back, {d.reverted} reverted"
    recovery = "nothing to recover from"
    if d.recovery_median is not None:
        recovery = f"median {duration(d.recovery_median)} ({plural(len(d.recoveries), 'recovery')})"
        recovery += _band(recovery_band(d.recovery_median))
    if d.unrecovered:
        recovery += f"; {d.unrecovered} not recovered yet"
    return [
        deployed,
        f"• Lead time for changes: {lead}",
        f"• Change failure rate: {cfr} (DORA {REPORT_YEAR} clusters: {CFR_CLUSTERS})",
        f"• Failed deployment recovery time: {recovery}",
        f"• Deployment rework rate: {d.rework} of {d.deployments} ({percent(d.rework_rate)})"
        " unplanned: rollbacks, reverts, hotfixes",
    ]


def flow_lines(report: Report, period: Period) -> list[str]:
    """Say the flow of a period: waits per stage and why, red main, builds lost on the way."""
    f, lines = period.flow, []
    for stage in f.stages:
        if not stage.entered:
            lines.append(f"• {stage.stage}: no build entered")
            continue
        total = sum(stage.reasons.values()) or 1.0
        why = ", ".join(
            f"{reason} {seconds / total * 100:.0f}%"
            for reason, seconds in stage.reasons.items()
            if seconds
        )
        lines.append(
            f"• {stage.stage}: median wait {duration(stage.median_wait or 0)} over"
            f" {stage.entered} build(s)" + (f" — {why}" if why else "")
        )
    weekly = ", ".join(str(w.flow.failed_builds) for w in report.weeks)
    red = "none of the time"
    if f.red_seconds:
        share = "under 1%" if f.red_share < 0.01 else percent(f.red_share)
        red = f"{duration(f.red_seconds)} ({share} of the time)"
    lines.append(
        f"• Failed builds: {f.failed_builds} of {f.builds} (week by week: {weekly}); main red {red}"
    )
    stopped = ", ".join(f"{n} at {where}" for where, n in sorted(f.stopped.items()))
    lines.append(
        f"• Builds that never reached {report.production}: {f.skipped}"
        + (f" ({stopped})" if stopped else "")
        + f"; {f.newer} newer than {report.production} may still get there"
    )
    return lines


def slack(report: Report) -> str:
    """Return the ephemeral /ship metrics answer."""
    total = report.total
    weeks = len(report.weeks)
    head = (
        f"*Delivery of {escape(report.repository)}* over the last {weeks} week(s)"
        f" ({day(total.start)} to {day(total.end)})"
    )
    return "\n".join(
        [
            head,
            *dora_lines(report, total),
            "*Flow*",
            *flow_lines(report, total),
            f"_Bands: DORA's {REPORT_YEAR} Accelerate State of DevOps report._",
        ]
    )


def digest_lines(report: Report) -> list[str]:
    """Return the weekly digest section's lines (the last week)."""
    week = report.weeks[-1]
    return [*dora_lines(report, week), *flow_lines(report, week)[-2:]]


def _values(report: Report, period: Period) -> dict[str, Any]:
    d, f = period.dora, period.flow
    return {
        "repository": report.repository,
        "from": day(period.start),
        "to": day(period.end),
        "deployments": d.deployments,
        "deployments_per_day": round(d.per_day, 3),
        "lead_time_median_s": d.lead_median,
        "lead_time_p90_s": d.lead_p90,
        "commits_measured": len(d.lead_times),
        "changes": d.changes,
        "failed_changes": d.failed_changes,
        "change_failure_rate": d.change_failure_rate,
        "recovery_median_s": d.recovery_median,
        "rework": d.rework,
        "rework_rate": d.rework_rate,
        "builds": f.builds,
        "failed_builds": f.failed_builds,
        "red_share": round(f.red_share, 4),
        "builds_never_in_production": f.skipped,
    }


def as_json(reports: Sequence[Report]) -> list[dict[str, Any]]:
    """Return every repository's window and weeks as plain data, with the bands."""
    out = []
    for report in reports:
        total = _values(report, report.total)
        total["bands"] = {
            "report": f"DORA {REPORT_YEAR} Accelerate State of DevOps",
            "deployment_frequency": frequency_band(report.total.dora.per_day),
            "lead_time": lead_band(report.total.dora.lead_median),
            "recovery_time": recovery_band(report.total.dora.recovery_median),
        }
        total["stages"] = [
            {"stage": s.stage, "entered": s.entered, "median_wait_s": s.median_wait, **s.reasons}
            for s in report.total.flow.stages
        ]
        total["weeks"] = [_values(report, w) for w in report.weeks]
        out.append(total)
    return out


def as_csv(reports: Sequence[Report]) -> str:
    """Return one CSV row per repository and week, then one for the whole window."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        for period in (*report.weeks, report.total):
            writer.writerow({k: "" if v is None else v for k, v in _values(report, period).items()})
    return buffer.getvalue()


def as_table(reports: Sequence[Report]) -> str:
    """Return a plain-text report per repository, for a terminal."""
    blocks = []
    for report in reports:
        lines = slack(report).splitlines()
        blocks.append("\n".join(line.replace("*", "").replace("_", "") for line in lines))
        rows = [f"{'week from':<12}{'deploys':>8}{'lead p50':>10}{'CFR':>6}{'failed builds':>15}"]
        for w in report.weeks:
            lead = duration(w.dora.lead_median) if w.dora.lead_median is not None else "-"
            cfr = percent(w.dora.change_failure_rate)
            rows.append(
                f"{day(w.start):<12}{w.dora.deployments:>8}{lead:>10}{cfr:>6}"
                f"{w.flow.failed_builds:>15}"
            )
        blocks[-1] += "\n\n" + "\n".join(rows)
    return "\n\n".join(blocks) if blocks else "No repository is known yet."
