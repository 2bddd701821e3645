"""What one district's roster build is asked to do: the district, its rules, and who launched it."""

from __future__ import annotations

from dataclasses import dataclass

from roster_pipeline.modeling.rules import RulesProfile


@dataclass(frozen=True)
class RosterPlan:
    """One district's build.

    `approved`: publish even when the mass-change guard would block (an operator said so);
    `approved_how`: "command" or "tag", recorded in `roster.publishes` when the approval overrode
    the guard. `run_id` and `trigger` are recorded with the publish (Dagster's run id and its
    `roster/trigger` tag, or any id a caller gives). `analyst_copy`: refresh the analysts'
    read-only DuckDB copy after a publish (a batch skips it per district and makes it once).
    """

    district_id: str
    rules: RulesProfile
    approved: bool = False
    approved_how: str = "tag"
    run_id: str = ""
    trigger: str = ""
    analyst_copy: bool = True
