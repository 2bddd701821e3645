"""`roster-pipeline status` and `approve`: every district at a glance, and blocked publishes approved in bulk.

status prints each district's state in one short line (defs/automation/district_status.py: the
warehouse's facts and the district's last run), and `status --district ID` every sentence of it. approve shows where each blocked change is concentrated (the
guard's per-school sentences), asks once, then syncs those districts with the approval, like
`sync --accept-mass-change`; the publish it lets through records in `roster.publishes` that it was
approved by command, its run, and the verdict it overrode.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from roster_pipeline.cli.dagster_home import ensure_dagster_home
from roster_pipeline.operations.terminal import printable
from roster_pipeline.settings import ConfigError, sis_stale_days, validate_district_id


def status(as_json: bool = False, out=None, district_id: str | None = None) -> int:
    """One short line per district (or a JSON list): name, last publish, last run, blocked, cursor age, pause,
    and a SIS that Clever has not synced for ROSTER_SIS_STALE_DAYS (a bad value: one sentence, exit 2).
    With `district_id`, that district's line and every sentence of its block or last failure."""
    out = out or sys.stdout
    if district_id is not None:
        validate_district_id(district_id, "--district")
    sis_stale_days()  # a bad value stops here, before the instance is opened
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.defs.automation.district_status import district_statuses

    with DagsterInstance.get() as instance:
        statuses = district_statuses(instance, [district_id] if district_id else None)
    if as_json:
        print(json.dumps([asdict(s) for s in statuses], indent=2), file=out)
        return 0
    if not statuses:
        print("No districts yet: run `roster-pipeline sync` once Clever districts have authorized the application.",
              file=out)
    for s in statuses:  # names are Clever's (JSON escapes control characters itself)
        for line in s.details() if district_id else [s.line()]:
            print(printable(line), file=out)
    return 0


def approve(district_ids: list[str] | None, all_blocked: bool, yes: bool, out=None, answer=None) -> int:
    """Approve the blocked mass changes of the named (or all blocked) districts, then publish them."""
    out = out or sys.stdout
    if not district_ids and not all_blocked:
        raise ConfigError("approve needs the districts to approve: --district ID (repeatable) or --all-blocked.")
    if district_ids and all_blocked:
        raise ConfigError("approve takes --district ID or --all-blocked, not both.")
    for district_id in district_ids or []:
        validate_district_id(district_id, "--district")
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.cli.sync import sync
    from roster_pipeline.defs.automation.district_status import district_statuses
    from roster_pipeline.publishing.guard import without_approval_hint

    with DagsterInstance.get() as instance:
        statuses = district_statuses(instance, district_ids or None)
    blocked = [s for s in statuses if s.blocked]
    for s in statuses:
        if not s.blocked:
            print(printable(f"{s.name or s.district_id} ({s.district_id}): no blocked publish; nothing to approve."), file=out)
    if not blocked:
        print("No blocked district to approve.", file=out)
        return 0 if all_blocked else 1
    print(f"{len(blocked)} district(s) blocked by the mass-change guard:", file=out)
    for s in blocked:
        print(printable(f"- {s.name or s.district_id} ({s.district_id}), run {s.last_run_id}:"), file=out)
        for sentence in s.blocked_because:
            print(f"    {printable(without_approval_hint(sentence))}", file=out)
    if not yes:
        if answer is None and not sys.stdin.isatty():
            raise ConfigError("approve asks for confirmation on a terminal; add --yes to approve without asking.")
        reply = (answer or input)(f"Publish these {len(blocked)} district(s) with their changes? [y/N] ")
        if reply.strip().lower() not in ("y", "yes"):
            print("Nothing approved.", file=out)
            return 1
    return sync([s.district_id for s in blocked], accept_mass_change=True, out=out)
