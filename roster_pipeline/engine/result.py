"""What one district's roster build did, as plain values: the Dagster layer and the tests read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from roster_pipeline.modeling.prepared import EmailCheck
from roster_pipeline.publishing.guard import Verdict
from roster_pipeline.publishing.identities import Matches

DEMOGRAPHICS_NOT_SHARED = ("DEMOGRAPHICS_NOT_SHARED: no student carries any demographic field; "
                           "no demographics rows published.")


@dataclass(frozen=True)
class ModelBuilt:
    """One SQL model built for the district: rows (None for a view), seconds, full or incremental;
    a mart's preview (aggregates, never a person's values) and, for rejected_records, rows per
    `action/REASON_CODE`."""

    name: str
    relation: str
    seconds: float
    build: str
    rows: int | None = None
    preview: str | None = None
    excluded: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractOutcome:
    """A mart's pandera contract on the district's rows (the changed rows of an incremental build)."""

    table: str
    passed: bool
    rows_checked: int
    seconds: float
    failure_count: int = 0
    failures_markdown: str = ""

    @property
    def sentence(self) -> str:
        return f"roster.{self.table} failed its pandera contract ({self.failure_count} failures)"


@dataclass
class RosterResult:
    """Everything one build did, filled in step order; a step that did not run leaves its default."""

    district_id: str
    district_name: str | None = None
    incremental: bool = False
    build_reason: str = ""  # why the build was full (empty when incremental)
    affected: dict[str, int] = field(default_factory=dict)  # incremental: changed records per entity
    rule_rows: dict[str, int] = field(default_factory=dict)  # rows of each rule table written
    emails: EmailCheck | None = None
    models: list[ModelBuilt] = field(default_factory=list)
    model_failure: str | None = None  # a model's error, in one sentence (values masked)
    identities: Matches | None = None
    contracts: list[ContractOutcome] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    approved: bool = False
    published: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # published table → rows, added, removed, ...
    new_school_year: str | None = None  # why this publish starts a new school year, with counts by school
    demographics_shared: bool = True
    vacuumed: list[str] = field(default_factory=list)
    analyst_file: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: prepare, models, identities, ...

    @property
    def blocked(self) -> list[str]:
        """The sentences that kept the district from publishing (failed contracts, then the guard)."""
        return [c.sentence for c in self.contracts if not c.passed] + [v.message for v in self.verdicts if v.blocked]

    @property
    def notices(self) -> list[str]:
        """District-level notices (the ones rejected_records also records)."""
        return [] if self.demographics_shared else [DEMOGRAPHICS_NOT_SHARED]

    @property
    def failure(self) -> str | None:
        """Why the district was not published, in sentences; None when it was."""
        if self.model_failure:
            return self.model_failure
        if self.blocked:
            return (f"District {self.district_id} not published; the previous version stays. "
                    + "; ".join(self.blocked))
        return None
