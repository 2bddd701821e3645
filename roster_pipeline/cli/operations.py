"""`roster-pipeline status` and `approve`: every district at a glance, and blocked publishes approved in bulk.

status joins what the warehouse knows (last publish, Clever's sync state, event cursor; see
operations/district_status.py) with what the Dagster instance knows (each district's last
`district_sync` run, and whether the mass-change guard blocked it). approve shows where each
blocked change is concentrated (the guard's per-school sentences), asks once, then syncs those
districts with the approval, like `sync --accept-mass-change`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from roster_pipeline.cli.dagster_home import ensure_dagster_home
from roster_pipeline.settings import ConfigError, data_dir, validate_district_id, warehouse_url


@dataclass
class DistrictStatus:
    district_id: str
    name: str | None
    last_publish: str | None
    last_run: str | None  # success, failure, started, ...
    last_run_at: str | None
    last_run_id: str | None
    blocked: bool
    blocked_because: list[str] = field(default_factory=list)  # the guard's sentences, per table
    events_cursor_age_hours: float | None = None
    clever_state: str | None = None
    paused: bool = False
    pause_end: str | None = None

    def line(self) -> str:
        who = f"{self.name} ({self.district_id})" if self.name else self.district_id
        published = f"published {self.last_publish}" if self.last_publish else "never published"
        run = f"last run {self.last_run} {self.last_run_at}" if self.last_run else "no run yet"
        blocked = ("BLOCKED: " + "; ".join(s.split(": publish blocked")[0] for s in self.blocked_because)
                   if self.blocked else "not blocked")
        cursor = ("events cursor " + _age(self.events_cursor_age_hours) if self.events_cursor_age_hours is not None
                  else "no events cursor")
        clever = f"Clever: {self.clever_state or 'unknown'}"
        if self.paused:
            clever = "Clever: paused" + (f" until {self.pause_end}" if self.pause_end else "") + " (data cannot change)"
        return f"{who}: {published}; {run}; {blocked}; {cursor}; {clever}"


def _age(hours: float) -> str:
    return f"{hours * 60:.0f} min old" if hours < 1 else f"{hours:.1f} h old" if hours < 48 else f"{hours / 24:.0f} days old"


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else None


def district_statuses(instance, district_ids: list[str] | None = None) -> list[DistrictStatus]:
    """Every district registered in the instance or present in the warehouse (or just `district_ids`)."""
    from dagster import DagsterEventType, RunsFilter

    from roster_pipeline.defs.constants import (
        DISTRICT_NAME_TAG,
        DISTRICT_PARTITIONS_NAME,
        DISTRICT_SYNC_JOB,
        MASS_CHANGE_CHECK,
        PARTITION_TAG,
    )
    from roster_pipeline.operations.district_status import warehouse_facts
    from roster_pipeline.warehouse.connection import Warehouse

    facts = warehouse_facts(Warehouse(warehouse_url(), data_dir() / "dlt"))
    known = district_ids or sorted(set(instance.get_dynamic_partitions(DISTRICT_PARTITIONS_NAME)) | set(facts))
    now = datetime.now(timezone.utc)
    statuses = []
    for district_id in known:
        fact = facts.get(district_id)
        records = instance.get_run_records(RunsFilter(job_name=DISTRICT_SYNC_JOB, tags={PARTITION_TAG: district_id}),
                                           limit=1)
        run = records[0].dagster_run if records else None
        ended = records[0].end_time or records[0].start_time if records else None
        because = []
        if run is not None and run.status.value == "FAILURE":
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
                evaluation = entry.dagster_event.event_specific_data
                if evaluation.check_name == MASS_CHANGE_CHECK and not evaluation.passed:
                    because.append(evaluation.description or f"{evaluation.asset_key.to_user_string()} changed too much")
        name = (fact.name if fact else None) or (run.tags.get(DISTRICT_NAME_TAG) if run else None)
        statuses.append(DistrictStatus(
            district_id, name, _when(fact.published_at if fact else None),
            run.status.value.lower() if run else None,
            _when(datetime.fromtimestamp(ended, tz=timezone.utc)) if ended else None,
            run.run_id if run else None, bool(because), because,
            round((now - fact.cursor_stored_at).total_seconds() / 3600, 2) if fact and fact.cursor_stored_at else None,
            fact.clever_state if fact else None, bool(fact and fact.paused(now)),
            _when(fact.pause_end) if fact else None))
    return statuses


def status(as_json: bool = False, out=None) -> int:
    """One line per district (or a JSON list): name, last publish, last run, blocked and why, cursor age, pause."""
    out = out or sys.stdout
    ensure_dagster_home()
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        statuses = district_statuses(instance)
    if as_json:
        print(json.dumps([asdict(s) for s in statuses], indent=2), file=out)
    elif not statuses:
        print("No districts yet: run `roster-pipeline sync` once Clever districts have authorized the application.",
              file=out)
    for s in [] if as_json else statuses:
        print(s.line(), file=out)
    return 0


def approve(district_ids: list[str] | None, all_blocked: bool, yes: bool, out=None, answer=None) -> int:
    """Approve the blocked mass changes of the named (or all blocked) districts, then publish them."""
    out = out or sys.stdout
    if bool(district_ids) == all_blocked:
        raise ConfigError("approve needs --district ID (repeatable) or --all-blocked, not both.")
    for district_id in district_ids or []:
        validate_district_id(district_id, "--district")
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.cli.sync import sync

    with DagsterInstance.get() as instance:
        statuses = district_statuses(instance, district_ids or None)
    blocked = [s for s in statuses if s.blocked]
    for s in statuses:
        if not s.blocked:
            print(f"{s.name or s.district_id} ({s.district_id}): no blocked publish; nothing to approve.", file=out)
    if not blocked:
        print("No blocked district to approve.", file=out)
        return 0 if all_blocked else 1
    print(f"{len(blocked)} district(s) blocked by the mass-change guard:", file=out)
    for s in blocked:
        print(f"- {s.name or s.district_id} ({s.district_id}), run {s.last_run_id}:", file=out)
        for sentence in s.blocked_because:
            print(f"    {sentence.split(' If the change is real')[0]}", file=out)
    if not yes:
        if answer is None and not sys.stdin.isatty():
            raise ConfigError("approve asks for confirmation on a terminal; add --yes to approve without asking.")
        reply = (answer or input)(f"Publish these {len(blocked)} district(s) with their changes? [y/N] ")
        if reply.strip().lower() not in ("y", "yes"):
            print("Nothing approved.", file=out)
            return 1
    return sync([s.district_id for s in blocked], accept_mass_change=True, out=out)
