"""Each district's state for people: last publish, last run, blocked and why, event cursor, Clever's pause,
and a district whose SIS Clever has not synced for ROSTER_SIS_STALE_DAYS.

Joins what the warehouse knows (operations/district_status.py) with what the Dagster instance
knows (each district's last `district_sync` run, and whether the mass-change guard blocked it).
`roster-pipeline status` prints it, `approve` acts on it, the freshness sensor judges it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from dagster import DagsterRunStatus, RunsFilter

from roster_pipeline.clever.sis_sync import SIS_STALE
from roster_pipeline.defs.automation.batch import run_problems
from roster_pipeline.defs.constants import (
    DISTRICT_NAME_TAG,
    DISTRICT_PARTITIONS_NAME,
    DISTRICT_SYNC_JOB,
    MASS_CHANGE_CHECK,
    PARTITION_TAG,
)
from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.operations.district_status import warehouse_facts
from roster_pipeline.publishing.guard import without_approval_hint
from roster_pipeline.settings import data_dir, sis_stale_days, warehouse_url
from roster_pipeline.warehouse.connection import Warehouse

LINE_LENGTH = 200  # `status` prints one line per district, at most this long; `status --district` says everything


@dataclass
class DistrictStatus:
    """One district's state. Every time is ISO 8601 (UTC), for scripts; the line says ages, for people."""

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
    last_failure: str | None = None  # the latest failed run's problems, one sentence each
    last_failure_at: str | None = None
    published_at: str | None = None  # the same as last_publish (kept for the scripts that read it)
    blocked_tables: dict[str, int] = field(default_factory=dict)  # blocked table → its change in rows
    blocked_schools: list[str] = field(default_factory=list)  # the schools beyond the guard's limit, by id
    sis_last_sync: str | None = None  # when Clever last synced the district's SIS
    sis_stale: bool = False  # that was more than ROSTER_SIS_STALE_DAYS ago (and Clever does not pause the district)
    demographics_shared: bool | None = None  # False: no student carries a demographic field (DEMOGRAPHICS_NOT_SHARED)

    def line(self, now: datetime | None = None) -> str:
        """At most LINE_LENGTH characters: a long name is shortened, the reasons are in `details`."""
        now = now or datetime.now(timezone.utc)
        published = f"published {_ago(self.last_publish, now)}" if self.last_publish else "never published"
        run = f"last run {self.last_run} {_ago(self.last_run_at, now)}" if self.last_run else "no run yet"
        cursor = ("events cursor " + _age(self.events_cursor_age_hours) if self.events_cursor_age_hours is not None
                  else "no events cursor")
        clever = f"Clever: {self.clever_state or 'unknown'}"
        if self.paused:  # `details` adds that the data cannot change meanwhile
            clever = "Clever: paused" + (f" until {self.pause_end[:10]}" if self.pause_end else "")
        if self.sis_stale:  # `details` says it in a whole sentence
            clever += f"; SIS not synced since {self.sis_last_sync[:10]}"
        notices = ["demographics not shared"] if self.demographics_shared is False else []  # `details` says more
        if self.blocked:  # the last run is the blocked one; the id is in the summary's `status --district ID`
            rest = "; ".join([self.blocked_summary(), published, cursor, clever, *notices])
            who = self.name or self.district_id
        else:
            rest = "; ".join([published, run, cursor, clever, *notices])
            who = f"{self.name} ({self.district_id})" if self.name else self.district_id
        if len(who) + 2 + len(rest) > LINE_LENGTH and self.name:
            kept = max(LINE_LENGTH - len(rest) - 3 - len(who) + len(self.name), 12)
            who = who.replace(self.name, self.name[:kept - 1] + "…", 1)
        line = f"{who}: {rest}"
        return line if len(line) <= LINE_LENGTH else line[:LINE_LENGTH - 1] + "…"

    def blocked_summary(self) -> str:
        """"BLOCKED: 2 schools, students -1,146 (+2 tables), see status --district ID"."""
        what = []
        if self.blocked_schools:
            what.append(f"{len(self.blocked_schools)} school{'s' if len(self.blocked_schools) != 1 else ''}")
        if self.blocked_tables:
            (table, change), *more = self.blocked_tables.items()
            what.append(f"{table} {change:+,d}" + (f" (+{len(more)} table{'s' if len(more) != 1 else ''})"
                                                   if more else ""))
        return f"BLOCKED: {', '.join(what) or 'mass change'}, see status --district {self.district_id}"

    def details(self) -> list[str]:
        """`status --district ID`: the line, then every sentence of the block or of the last failure."""
        lines = [self.line()]
        if self.paused:
            lines.append("  Clever pauses the district's syncs: its data cannot change meanwhile.")
        if self.sis_stale:
            lines.append(f"  {SIS_STALE.format(date=self.sis_last_sync[:10])}: changes made in the SIS since then "
                         "are not in the roster; the district's Clever admin can check the SIS sync in Clever.")
        if self.demographics_shared is False:
            code = REASON_CODES["DEMOGRAPHICS_NOT_SHARED"]
            lines.append(f"  Demographics not shared (DEMOGRAPHICS_NOT_SHARED): {code.meaning} {code.fix}")
        lines += [f"  {without_approval_hint(sentence)}" for sentence in self.blocked_because]
        if self.blocked:
            lines.append(f"  If the change is real, approve it: roster-pipeline approve --district {self.district_id}")
        elif self.last_failure:
            lines.append(f"  Last failure ({self.last_failure_at}): {self.last_failure}")
        return lines


def _age(hours: float) -> str:
    return f"{hours * 60:.0f} min old" if hours < 1 else f"{hours:.1f} h old" if hours < 48 else f"{hours / 24:.0f} days old"


def _ago(iso: str, now: datetime) -> str:
    return _age(max((now - datetime.fromisoformat(iso)).total_seconds(), 0) / 3600).replace(" old", " ago")


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds") if moment else None


def district_statuses(instance, district_ids: list[str] | None = None) -> list[DistrictStatus]:
    """Every district registered in the instance or present in the warehouse (or just `district_ids`)."""
    facts = warehouse_facts(Warehouse(warehouse_url(), data_dir() / "dlt"))
    known = district_ids or sorted(set(instance.get_dynamic_partitions(DISTRICT_PARTITIONS_NAME)) | set(facts))
    now, stale_days = datetime.now(timezone.utc), sis_stale_days()
    statuses = []
    for district_id in known:
        fact = facts.get(district_id)
        records = instance.get_run_records(RunsFilter(job_name=DISTRICT_SYNC_JOB, tags={PARTITION_TAG: district_id}),
                                           limit=1)
        run = records[0].dagster_run if records else None
        ended = records[0].end_time or records[0].start_time if records else None
        failed = instance.get_run_records(RunsFilter(job_name=DISTRICT_SYNC_JOB, tags={PARTITION_TAG: district_id},
                                                     statuses=[DagsterRunStatus.FAILURE]), limit=1)
        because, failure, failure_at, tables, schools = [], None, None, {}, {}
        if failed:  # the latest failed run's events, read once: its problems, and why it was blocked
            events = [e.dagster_event for e in instance.all_logs(failed[0].dagster_run.run_id) if e.dagster_event]
            failure = "; ".join(run_problems(events)) or "the run failed (see its log)"
            failure_at = _when(datetime.fromtimestamp(failed[0].end_time or failed[0].create_timestamp.timestamp(),
                                                      tz=timezone.utc))
            if run is not None and run.run_id == failed[0].dagster_run.run_id:  # blocked now, not some time ago
                for event in events:
                    evaluation = event.event_specific_data
                    if (event.event_type_value == "ASSET_CHECK_EVALUATION" and evaluation.check_name == MASS_CHANGE_CHECK
                            and not evaluation.passed):
                        table = evaluation.asset_key.path[-1]
                        because.append(evaluation.description or f"{table} changed too much")
                        metadata = evaluation.metadata or {}
                        if "change" in metadata:
                            tables[table] = metadata["change"].value
                        if "schools_beyond_limit" in metadata:
                            schools |= dict.fromkeys(metadata["schools_beyond_limit"].value.split(", "))
        name = (fact.name if fact else None) or (run.tags.get(DISTRICT_NAME_TAG) if run else None)
        statuses.append(DistrictStatus(
            district_id, name, _when(fact.published_at if fact else None),
            run.status.value.lower() if run else None,
            _when(datetime.fromtimestamp(ended, tz=timezone.utc)) if ended else None,
            run.run_id if run else None, bool(because), because,
            round((now - fact.cursor_stored_at).total_seconds() / 3600, 2) if fact and fact.cursor_stored_at else None,
            fact.clever_state if fact else None, bool(fact and fact.paused(now)),
            _when(fact.pause_end) if fact else None, failure, failure_at,
            _when(fact.published_at) if fact else None, tables, list(schools),
            sis_last_sync=_when(fact.last_sync) if fact else None,
            sis_stale=bool(fact and fact.sis_stale_since(now, stale_days)),
            demographics_shared=fact.demographics_shared if fact else None))
    return statuses
