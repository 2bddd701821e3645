"""The clean roster as Dagster assets: rules → SQL models → pandera checks → publish.

Every model of `dbt_like_sql/` is an asset, with its dependencies read from its `ref()`/`source()`
calls and its column docs from the models' yml. Like dagster-dbt's `@dbt_assets`, the whole project
is one multi-asset: one step builds a district's models in dependency order, runs the checks
and publishes. One step instead of ~40 keeps Dagster's per-step cost out of a district's run
(it was most of a small district's run time), while the UI still shows one asset per model,
its lineage, and one check result per table.

Each mart has a blocking pandera check; `roster/published` swaps the checked district into
schema `roster` only when every check passed, otherwise the step fails naming the checks and
the previous published version stays.

Metadata and logs carry counts, ids and reason codes, never a student's or teacher's values:
Dagster's event log is readable by everyone with the UI, outside the warehouse roles that keep
personal data and demographics apart. So previews are aggregates computed in the warehouse, and
a failed check names its failing records by id (see `contract_check`).
"""


import warnings
from typing import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    multi_asset,
)
from dagster._utils.warnings import PreviewWarning

from roster_pipeline.defs.automation.jobs import APPROVED_BY_TAG
from roster_pipeline.defs.clever_raw.assets import warehouse_pool
from roster_pipeline.defs.constants import (
    APPROVAL_TAG,
    CONTRACT_CHECK,
    DISTRICT_NAME_TAG,
    FROM_UI_TAG,
    MASS_CHANGE_CHECK,
    OWNER,
    RAW_GROUP,
    ROSTER_GROUP,
    SKIP_ANALYST_COPY_TAG,
    TRIGGER_TAG,
)
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import RulesResource, WarehouseResource
from roster_pipeline.defs.run_log import forwarded_to_run_log
from roster_pipeline.engine import ENGINE_LOGGER
from roster_pipeline.engine.plan import RosterPlan
from roster_pipeline.engine.result import RosterResult
from roster_pipeline.engine.roster import IDENTITY_TABLE, build_roster
from roster_pipeline.modeling import prepared
from roster_pipeline.modeling.incremental import AFFECTED_TABLE
from roster_pipeline.modeling.project import RULE_TABLES, SqlModel, SqlProject, described
from roster_pipeline.publishing.guard import GUARDED_TABLES
from roster_pipeline.publishing.history import COUNTED
from roster_pipeline.warehouse.schemas import PUBLISHED_SCHEMA

# Partitioned asset checks are a Dagster preview feature; we rely on them knowingly (one check
# result per district), so the warning would only add noise to every CLI run.
warnings.filterwarnings("ignore", category=PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")

RULES_KEY = AssetKey([ROSTER_GROUP, "district_rules"])
PUBLISHED_KEY = AssetKey([ROSTER_GROUP, "published"])


def model_key(name: str) -> AssetKey:
    return RULES_KEY if name in RULE_TABLES else AssetKey([ROSTER_GROUP, name])


def prepared_key(project: SqlProject, table: str) -> AssetKey:
    """The asset that writes a `source('pipeline', table)`: its yml `meta.dagster.asset_key`."""
    return AssetKey(project.source_tables["pipeline"]["meta"][table]["dagster"]["asset_key"])


def read_key(project: SqlProject, name: str) -> AssetKey:
    """A pipeline table's `meta.reads` entry as an asset key: `clever.students` is a raw table, else a model."""
    return AssetKey([RAW_GROUP, name.split(".", 1)[1]]) if name.startswith("clever.") else model_key(name)


def prepared_specs(project: SqlProject, warehouse_kind: str) -> list[AssetSpec]:
    """The tables the roster step writes in Python (`source('pipeline', ...)`), as assets with what they read."""
    meta = project.source_tables["pipeline"]["meta"]
    return [AssetSpec(
        prepared_key(project, table), group_name=ROSTER_GROUP, owners=[OWNER], kinds={"python", warehouse_kind},
        deps=[read_key(project, name) for name in meta[table].get("reads", [])],
        description=f"{project.sources['pipeline'][table]['description']} Written to `{project.source_relation('pipeline', table)}`.",
        metadata={"dagster/column_schema": TableSchema(columns=[
            TableColumn(name, str(doc.get("data_type", "varchar")), description=str(doc.get("description", "")))
            for name, doc in project.sources["pipeline"][table]["columns"].items()])},
    ) for table in meta]


def column_schema(project: SqlProject, model: SqlModel) -> TableSchema | None:
    """The model's columns from its yml; a mart's columns carry their checks (the yml's data_tests)."""
    from dagster import TableColumnConstraints

    columns = project.docs.get(model.name, {}).get("columns", {})
    if not columns:
        return None

    def constraints(tests: list) -> TableColumnConstraints | None:
        if not tests:
            return None
        names = {t.name for t in tests}
        return TableColumnConstraints(nullable="not_null" not in names, unique="unique" in names,
                                      other=[described(t) for t in tests if t.name not in ("not_null", "unique")])

    return TableSchema(columns=[
        TableColumn(name, str(doc.get("data_type", "varchar")), description=str(doc.get("description", "")).strip(),
                    constraints=constraints(doc.get("data_tests")))
        for name, doc in columns.items()])


def model_spec(project: SqlProject, model: SqlModel, warehouse_kind: str) -> AssetSpec:
    doc = project.docs.get(model.name, {})
    where = (f"`{model.relation}` (a view over every district)" if model.materialized == "view"
             else f"`{model.relation}`, one slice per district" + (
                 f"; published to `{PUBLISHED_SCHEMA}.{model.name}`" if model.layer == "marts" else ""))
    metadata = {"sql_file": MetadataValue.path(str(model.path.relative_to(project.sql_dir.parent))),
                "layer": model.layer}
    schema = column_schema(project, model)
    if schema:
        metadata["dagster/column_schema"] = schema
    kinds = {"sql", warehouse_kind} | ({"pandera"} if model.layer == "marts" else set())
    return AssetSpec(
        model_key(model.name), group_name=ROSTER_GROUP, owners=[OWNER], kinds=kinds,
        deps=[model_key(r) for r in dict.fromkeys(model.refs)] + [AssetKey([RAW_GROUP, s]) for s in dict.fromkeys(model.sources)]
        + [prepared_key(project, t) for t in dict.fromkeys(model.prepared)],
        description=f"{doc.get('description') or model.name} Built from {model.path.name} into {where}.",
        metadata=metadata,
    )


def check_specs(marts: list[str]) -> list[AssetCheckSpec]:
    contracts = [AssetCheckSpec(
        CONTRACT_CHECK, asset=model_key(t), blocking=True, partitions_def=district_partitions,
        description=f"Pandera contract of roster.{t}: types, keys, formats, grade range, foreign keys, run as "
                    "queries inside the warehouse. A failure blocks the district's publish.") for t in marts]
    guards = [AssetCheckSpec(
        MASS_CHANGE_CHECK, asset=model_key(t), blocking=True, partitions_def=district_partitions,
        description=f"Blocks the publish when the district's {t} shrink or grow by more than "
                    "ROSTER_MASS_CHANGE_SHARE and ROSTER_MASS_CHANGE_MIN_ROWS against the published version "
                    f"(first publish exempt; approve with the run tag {APPROVAL_TAG}=true).") for t in GUARDED_TABLES]
    return contracts + guards


def name_run_after_district(context: AssetExecutionContext, name: str | None) -> None:
    """Tag the run `roster/district_name` with the name Clever just served, however the run was launched.

    Run lists and the CLI then say "Riverside Unified" instead of a hex id (the partition key
    stays the id: names change, ids do not).
    """
    if name and context.run.tags.get(DISTRICT_NAME_TAG) != name:
        context.instance.add_run_tags(context.run_id, {DISTRICT_NAME_TAG: name})


def approved_how(tags) -> str:
    """How the run's approval was given: `command` (the CLI's `approve` or `sync --accept-mass-change`
    tag the run so) or `tag` (the approval tag alone, e.g. a UI launch; a UI re-execution of an approved
    command's run copies its tags, and is the UI's)."""
    return "command" if tags.get(APPROVED_BY_TAG) == "command" and FROM_UI_TAG not in tags else "tag"


def roster_plan(context: AssetExecutionContext, profile) -> RosterPlan:
    """The engine's plan from the run: its district, approval and trigger tags."""
    tags = context.run.tags
    return RosterPlan(context.partition_key, profile, approved=tags.get(APPROVAL_TAG, "").lower() == "true",
                      approved_how=approved_how(tags), run_id=context.run_id, trigger=tags.get(TRIGGER_TAG, ""),
                      analyst_copy=tags.get(SKIP_ANALYST_COPY_TAG) != "true")


def model_results(project: SqlProject, plan: RosterPlan, result: RosterResult) -> Iterator[MaterializeResult]:
    """The rules tables, the email check and each model built, as materializations."""
    if result.emails is None:  # the build failed before its first step ended
        return
    yield MaterializeResult(asset_key=RULES_KEY, metadata={
        "rules_file": str(plan.rules.path), **{k: MetadataValue.int(v) for k, v in result.rule_rows.items()}})
    yield MaterializeResult(asset_key=prepared_key(project, prepared.INVALID_EMAILS_TABLE), metadata={
        "check_syntax": MetadataValue.bool(plan.rules.for_district(plan.district_id).email_syntax_checked),
        "emails_judged": MetadataValue.int(result.emails.judged),  # the ones not plain, read into Python
        "emails_refused": MetadataValue.int(result.emails.invalid), "seconds": result.seconds["emails"]})
    yield MaterializeResult(asset_key=prepared_key(project, AFFECTED_TABLE), metadata={
        "build": "incremental" if result.incremental else "full",
        **{f"{entity}s_changed": MetadataValue.int(n) for entity, n in result.affected.items()}})
    identities_told = False
    for model in result.models:
        if not identities_told and IDENTITY_TABLE in project.models[model.name].prepared:
            yield identities_result(project, result)  # Dagster wants them in dependency order
            identities_told = True
        metadata = {"relation": model.relation, "seconds": model.seconds, "build": model.build}
        if model.rows is not None:
            metadata["dagster/row_count"] = MetadataValue.int(model.rows)
        if model.preview is not None:
            metadata["preview"] = MetadataValue.md(model.preview)
        metadata |= {code: MetadataValue.int(rows) for code, rows in model.excluded.items()}
        yield MaterializeResult(asset_key=model_key(model.name), metadata=metadata)
    if not identities_told and result.identities is not None:
        yield identities_result(project, result)


def identities_result(project: SqlProject, result: RosterResult) -> MaterializeResult:
    """The identity step: ids linked to the person they named before, and ids left ambiguous."""
    matches = result.identities
    return MaterializeResult(asset_key=prepared_key(project, IDENTITY_TABLE), metadata={
        "seconds": result.seconds.get("identities", 0.0),
        **{f"{e}_ids_reissued": MetadataValue.int(n) for e, n in matches.linked.items()},
        **{f"{e}_ids_ambiguous": MetadataValue.int(n) for e, n in matches.ambiguous.items()}})


def check_results(result: RosterResult) -> Iterator[AssetCheckResult]:
    """Each mart's contract and each guarded table's verdict, as blocking check results."""
    for contract in result.contracts:
        metadata = {"rows_checked": MetadataValue.int(contract.rows_checked), "seconds": contract.seconds}
        if not contract.passed:
            metadata |= {"failure_count": MetadataValue.int(contract.failure_count),
                         "failures": MetadataValue.md(contract.failures_markdown)}
        yield AssetCheckResult(asset_key=model_key(contract.table), check_name=CONTRACT_CHECK, passed=contract.passed,
                               severity=AssetCheckSeverity.ERROR, metadata=metadata)
    for verdict in result.verdicts:
        metadata = {"published_rows": MetadataValue.int(verdict.published or 0),
                    "new_rows": MetadataValue.int(verdict.new), "change": MetadataValue.int(verdict.change),
                    "approved": MetadataValue.bool(result.approved)}
        if verdict.schools:  # the schools beyond the limit, by id (`status` counts them)
            metadata["schools_beyond_limit"] = MetadataValue.text(", ".join(map(str, verdict.schools)))
        for name, records in (("removed", verdict.removed), ("added", verdict.added)):
            if records is not None:  # over the limit: which records, by id
                metadata[f"{name}_records"] = MetadataValue.int(records[0])
                metadata[f"{name}_record_ids"] = MetadataValue.text(
                    ", ".join(records[1]) + (" …" if records[0] > len(records[1]) else ""))
        yield AssetCheckResult(asset_key=model_key(verdict.table), check_name=MASS_CHANGE_CHECK,
                               passed=not verdict.blocked, severity=AssetCheckSeverity.ERROR,
                               description=verdict.message, metadata=metadata)


def published_metadata(result: RosterResult) -> dict:
    """Rows per table, and per entity the records added/removed/changed (the UI plots them over time),
    the seconds per phase, and the district's notices."""
    metadata = {t: MetadataValue.int(c["rows"]) for t, c in result.counts.items()}
    metadata |= {f"{t}_{what}": MetadataValue.int(c[what]) for t, c in result.counts.items()
                 for what in COUNTED if what in c}
    metadata |= {k: v for k, v in result.seconds.items()}
    if result.identities is not None:
        metadata |= {f"{e}_ids_reissued": MetadataValue.int(n) for e, n in result.identities.linked.items() if n}
    metadata["demographics_shared"] = MetadataValue.bool(result.demographics_shared)
    if result.notices:  # the district-level notices of rejected_records
        metadata["notices"] = MetadataValue.text(" ".join(result.notices))
    if result.new_school_year:
        metadata["new_school_year"] = MetadataValue.text(result.new_school_year)
    if result.vacuumed:
        metadata["vacuumed_tables"] = MetadataValue.int(len(result.vacuumed))
    if result.analyst_file is not None:
        metadata["analyst_file"] = MetadataValue.path(str(result.analyst_file))
    return metadata


def build_roster_assets(project: SqlProject, warehouse_kind: str):
    """The `roster` group: one multi-asset over the rules, every SQL model and the publish."""
    marts = [m.name for m in project.marts()]
    specs = [
        AssetSpec(RULES_KEY, group_name=ROSTER_GROUP, owners=[OWNER], kinds={"python", warehouse_kind},
                  description="The district's effective rules profile (ROSTER_RULES, or the bundled default) as the "
                              "small tables the SQL models join: grade crosswalk, subject names, kept subjects, "
                              "school scope."),
        *prepared_specs(project, warehouse_kind),
        *(model_spec(project, m, warehouse_kind) for m in project.models.values()),
        AssetSpec(PUBLISHED_KEY, group_name=ROSTER_GROUP, owners=[OWNER], kinds={"sql", warehouse_kind},
                  deps=[model_key(t) for t in marts], skippable=True,
                  description="Publishes the district's checked tables into schema `roster` in one transaction: "
                              "readers see the previous complete version or the new one, never a mix, and other "
                              "districts are untouched. Happens only when every blocking check passed."),
    ]

    @multi_asset(name="roster_models", specs=specs, check_specs=check_specs(marts),
                 partitions_def=district_partitions, pool=warehouse_pool(warehouse_kind))
    def roster_models(context: AssetExecutionContext, warehouse: WarehouseResource, rules: RulesResource):
        """Build, check and publish one district's roster (the engine), then report what it did."""
        plan = roster_plan(context, rules.profile())
        with forwarded_to_run_log(ENGINE_LOGGER):
            result = build_roster(warehouse.warehouse(), project, plan)
        name_run_after_district(context, result.district_name)
        yield from model_results(project, plan, result)
        yield from check_results(result)
        if result.failure:
            raise Failure(description=result.failure)
        yield MaterializeResult(asset_key=PUBLISHED_KEY, metadata=published_metadata(result))

    return roster_models
