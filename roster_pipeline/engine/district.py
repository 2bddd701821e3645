"""One district's whole sync without Dagster: raw load, roster build, school pages.

The Dagster job runs the same three steps as three assets (with claims, retries and the UI);
this straight call is what the behaviour tests, benchmarks and scripts use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roster_pipeline.clever.client import discover_district_tokens
from roster_pipeline.engine.plan import RosterPlan
from roster_pipeline.engine.raw_load import CleverAccess, RawLoad, load_raw
from roster_pipeline.engine.result import RosterResult
from roster_pipeline.engine.roster import build_roster
from roster_pipeline.modeling.project import sql_project
from roster_pipeline.reports.school_reports import reports_dir, write_reports
from roster_pipeline.settings import CleverSettings, clever_timeout
from roster_pipeline.warehouse.connection import Warehouse


@dataclass
class DistrictSync:
    """What one district's sync did: its raw load, its roster build and its pages (None when not written)."""

    raw: RawLoad
    roster: RosterResult
    reports: dict | None = None

    @property
    def published(self) -> bool:
        return self.roster.published


def clever_access(settings: CleverSettings) -> dict[str, CleverAccess]:
    """District id → its Clever access (its own token), from CLEVER_DISTRICT_TOKENS or OAuth discovery."""
    timeout = clever_timeout()
    return {district_id: CleverAccess(token, settings.api_base_url, timeout_seconds=timeout)
            for district_id, token in discover_district_tokens(settings).items()}


def sync_district(wh: Warehouse, access: CleverAccess, plan: RosterPlan, *, incremental: bool = False,
                  pages: Path | None = None) -> DistrictSync:
    """Load, build and publish one district; then write its school pages (under `pages`, default
    ROSTER_REPORTS_DIR) when it published. A Clever or warehouse error raises; a designed outcome
    (a failed check, the guard) is in the result."""
    raw = load_raw(wh, access, plan.district_id, incremental=incremental)
    roster = build_roster(wh, sql_project(), plan)
    done = DistrictSync(raw, roster)
    if roster.published:
        subjects = plan.rules.for_district(plan.district_id).subjects_keep
        done.reports = write_reports(wh, plan.district_id, pages or reports_dir(), subjects=subjects)
    return done
