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


import re
import time
import warnings
from datetime import datetime, timezone
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
from roster_pipeline.defs.roster.previews import preview_markdown
from roster_pipeline.modeling import prepared
from roster_pipeline.modeling.contract_check import check_contract, ibis_connection
from roster_pipeline.modeling.incremental import changed_condition, mark_affected, plan_build, record_publish
from roster_pipeline.modeling.project import RULE_TABLES, SqlModel, SqlProject
from roster_pipeline.modeling.rules import write_rule_tables
from roster_pipeline.modeling.runner import build_model, prepare_schemas
from roster_pipeline.operations.alerts import Alert, post_alert
from roster_pipeline.publishing import identities
from roster_pipeline.publishing.guard import GUARDED_TABLES, Verdict, judge_all
from roster_pipeline.publishing.history import COUNTED, Publish
from roster_pipeline.publishing.publish import publish_district
from roster_pipeline.publishing.school_year import per_school_counts, school_year
from roster_pipeline.settings import MassChangeSettings, OperationsSettings, history_retention_days
from roster_pipeline.warehouse.analyst_copy import refresh_analyst_file
from roster_pipeline.warehouse.connection import Statements, placeholder
from roster_pipeline.warehouse.postgres_tables import reclaim_space
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA

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


def prepared_specs(project: SqlProject, warehouse_kind: str) -> list[AssetSpec]:
    """The tables the roster step writes in Python before the models (modeling/prepared.py), as assets."""
    return [AssetSpec(
        prepared_key(project, table), group_name=ROSTER_GROUP, owners=[OWNER], kinds={"python", warehouse_kind},
        deps=[AssetKey([RAW_GROUP, raw]) for raw in prepared.READS[table]],
        description=f"{project.sources['pipeline'][table]['description']} Written to `{project.source_relation('pipeline', table)}`.",
        metadata={"dagster/column_schema": TableSchema(columns=[
            TableColumn(name, str(doc.get("data_type", "varchar")), description=str(doc.get("description", "")))
            for name, doc in project.sources["pipeline"][table]["columns"].items()])},
    ) for table in prepared.READS]


def column_schema(project: SqlProject, model: SqlModel) -> TableSchema | None:
    """The model's columns from its yml; a mart's columns carry their checks (the yml's data_tests)."""
    from dagster import TableColumnConstraints

    from roster_pipeline.publishing.data_dictionary import in_words

    columns = project.docs.get(model.name, {}).get("columns", {})
    if not columns:
        return None

    def constraints(tests: list) -> TableColumnConstraints | None:
        if not tests:
            return None
        names = {t.name for t in tests}
        return TableColumnConstraints(nullable="not_null" not in names, unique="unique" in names,
                                      other=[in_words(t) for t in tests if t.name not in ("not_null", "unique")])

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


def excluded_by_reason(sql: Statements, relation: str, district_id: str) -> dict:
    """Rows per reason code (`excluded/<CODE>`, `field_nulled/<CODE>`), for the UI and its plots."""
    sql.execute(f"select action, reason_code, count(*) from {relation} where district_id = "
                f"{placeholder(sql.dialect, 'd')} group by action, reason_code order by 1, 2", {"d": district_id})
    return {f"{action}/{code}": MetadataValue.int(rows) for action, code, rows in sql.fetchall()}


def sql_error_sentence(exc: Exception) -> str:
    """The first line of a model's database error, with quoted text masked unless the error is
    about the SQL itself (parser, binder, catalog: raised before any row is read). Errors raised
    while reading rows may quote a value ("Could not convert string '…'", "Key (…)=(…)")."""
    import duckdb
    import psycopg2

    lines = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    if isinstance(exc, (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                        psycopg2.ProgrammingError)):
        return message
    return re.sub(r"=\([^)]*\)", "=(…)", re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message))


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


def build_models(context: AssetExecutionContext, wh, project: SqlProject, district_id: str, district_rules, profile,
                 rows_deleted: dict[str, int] | None = None) -> Iterator[MaterializeResult]:
    """The rules tables and every SQL model for one district, in one turn on the warehouse.

    Incremental when it can be (only the records changed since the last publish; see
    modeling/incremental.py), else full, with the reason in the run log. Before the models, the
    district's facts (modeling/prepared.py: whether it shares demographics) join the rules' parameters,
    and the emails the build reads are checked. Returns (through the generator's value) the build plan
    and the models' parameters. The results are yielded after the turn; a failing model still reports
    the models built before it, then fails the step naming its SQL file.
    """
    results, failure = [], None
    with wh.session() as session:
        with session.transaction() as sql:
            prepare_schemas(sql)
            identities.prepare(sql)  # the rejected_records model reads the ambiguous identity matches
            counts = write_rule_tables(sql, BUILD_SCHEMA, district_id, district_rules)
            parameters = district_rules.sql_parameters() | prepared.build_parameters(sql, district_id)
            plan = plan_build(sql, project, district_id, district_rules, parameters)
            affected = mark_affected(sql, district_id) if plan.incremental else {}
            started = time.monotonic()
            emails = prepared.check_emails(sql, district_id, plan.incremental, district_rules.email_syntax_checked)
        results.append(MaterializeResult(asset_key=RULES_KEY, metadata={
            "rules_file": str(profile.path), **{k: MetadataValue.int(v) for k, v in counts.items()}}))
        results.append(MaterializeResult(asset_key=prepared_key(project, prepared.INVALID_EMAILS_TABLE), metadata={
            "check_syntax": MetadataValue.bool(district_rules.email_syntax_checked),
            "emails_judged": MetadataValue.int(emails.judged),  # the ones not plain, read into Python
            "emails_refused": MetadataValue.int(emails.invalid),
            "seconds": round(time.monotonic() - started, 3)}))
        if plan.incremental:
            context.log.info(f"District {district_id}: incremental build of the records changed since the last "
                             "publish (" + ", ".join(f"{n} {e}s" for e, n in affected.items()) + ").")
        else:
            context.log.info(f"District {district_id}: full build: {plan.reason}.")
        for model in project.build_order():
            started = time.monotonic()
            try:
                with session.transaction() as sql:
                    rows = build_model(sql, project, model, district_id, parameters, rows_deleted, plan.incremental)
                    metadata = {"relation": model.relation, "seconds": round(time.monotonic() - started, 3),
                                "build": "incremental" if plan.incremental and project.changed_rows(model) else "full"}
                    if model.materialized != "view":
                        metadata["dagster/row_count"] = MetadataValue.int(rows)
                    if model.layer == "marts":
                        metadata["preview"] = MetadataValue.md(preview_markdown(sql, model, district_id))
                        if model.name == "rejected_records":
                            metadata |= excluded_by_reason(sql, model.relation, district_id)
            except Exception as exc:
                # Not chained to `exc`: the event log would keep its message, which may quote a value.
                failure = Failure(description=f"SQL model {model.path.name} failed for district {district_id}: "
                                              f"{sql_error_sentence(exc)}")
                break
            results.append(MaterializeResult(asset_key=model_key(model.name), metadata=metadata))
    yield from results
    if failure is not None:
        raise failure
    return plan, parameters


def name_run_after_district(context: AssetExecutionContext, wh, district_id: str) -> None:
    """Tag the run `roster/district_name` with the name Clever just served, however the run was launched.

    Run lists and the CLI then say "Riverside Unified" instead of a hex id (the partition key
    stays the id: names change, ids do not).
    """
    with wh.transaction() as sql:
        row = sql.execute(f"select name from {BUILD_SCHEMA}.districts where district_id = "
                          f"{placeholder(sql.dialect, 'd')}", {"d": district_id}).fetchone()
    if row and row[0] and context.run.tags.get(DISTRICT_NAME_TAG) != row[0]:
        context.instance.add_run_tags(context.run_id, {DISTRICT_NAME_TAG: row[0]})


def approved_how(tags) -> str:
    """How the run's approval was given: `command` (the CLI's `approve` or `sync --accept-mass-change`
    tag the run so) or `tag` (the approval tag alone, e.g. a UI launch; a UI re-execution of an approved
    command's run copies its tags, and is the UI's)."""
    return "command" if tags.get(APPROVED_BY_TAG) == "command" and FROM_UI_TAG not in tags else "tag"


def overridden_verdict(verdicts: list[Verdict]) -> str | None:
    """The sentences of the verdicts an approval let through (over the limit), as the guard would have
    blocked them; None when no table was over the limit (the approval overrode nothing)."""
    over = [v.message.split(": above the limit, ")[0].rstrip(".") + "." for v in verdicts if v.removed is not None]
    return " ".join(over) or None


def announce_new_school_year(operations: OperationsSettings, district_id: str, name: str | None, why: str) -> None:
    """Tell people (ROSTER_ALERT_WEBHOOK_URL) that a district rolled over; best effort, never failing the run.

    Called last in the roster step, once its warehouse work (publish, vacuum, analysts' copy) is
    done and the publish is recorded: a slow receiver then costs at most post_alert's deadline and
    holds no warehouse turn.
    """
    if operations.alert_webhook_url is not None:
        why = why.removeprefix("new school year: ")  # the headline already says so
        post_alert(operations.alert_webhook_url, allow_private=operations.alert_webhook_allow_private, alert=Alert(
            district_id, name, "new school year", why[:1].upper() + why[1:],
            "nothing to do unless the counts look wrong: last year's roster stays in the history tables "
            "(roster.<table>_history), and the school confirmation pages show the new year."))


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
        """Build, check and publish one district's roster.

        Each phase (models, contracts, guards and publish) runs in one turn on the warehouse and
        its results are handed to Dagster after it: recording events is the slow Python part of
        a small district, and another process can use a DuckDB warehouse meanwhile.
        """
        district_id = context.partition_key
        wh = warehouse.warehouse()
        profile = rules.profile()
        district_rules = profile.for_district(district_id)
        rows_deleted: dict[str, int] = {}  # dead rows per table, for the vacuum after publish
        plan, parameters = yield from build_models(context, wh, project, district_id, district_rules, profile,
                                                   rows_deleted)
        changed_rows = {t: rows for t in marts if plan.incremental and (rows := project.changed_rows(t))}
        changed_sql = {t: changed_condition(c, wh.kind) for t, c in changed_rows.items()}
        name_run_after_district(context, wh, district_id)
        operations = OperationsSettings.from_env()
        started = time.monotonic()
        with wh.transaction() as sql:
            year = school_year(sql, district_id, operations.school_year_start, datetime.now(timezone.utc))
            matches = identities.match(sql, district_id, changed_sql, year.new_year is not None)
            if any(matches.ambiguous.values()):  # their IDENTITY_AMBIGUOUS records join rejected_records
                build_model(sql, project, project.models["rejected_records"], district_id,
                            parameters, rows_deleted, plan.incremental)
        identity_seconds = round(time.monotonic() - started, 3)
        for entity, linked in matches.linked.items():
            if linked or matches.ambiguous[entity]:
                context.log.info(f"District {district_id}: {linked} re-issued {entity} ids linked to the person they "
                                 f"named before, {matches.ambiguous[entity]} not linked (IDENTITY_AMBIGUOUS).")

        blocked: list[str] = []
        checks = []
        with ibis_connection(wh) as backend:
            for table in marts:
                started = time.monotonic()
                result = check_contract(backend, table, district_id, district_rules, changed_rows.get(table))
                metadata = {"rows_checked": MetadataValue.int(result.rows_checked),
                            "seconds": round(time.monotonic() - started, 3)}
                if not result.passed:
                    blocked.append(f"roster.{table} failed its pandera contract ({result.failure_count} failures)")
                    metadata |= {"failure_count": MetadataValue.int(result.failure_count),
                                 "failures": MetadataValue.md(result.failures_markdown)}
                checks.append(AssetCheckResult(asset_key=model_key(table), check_name=CONTRACT_CHECK, passed=result.passed,
                                               severity=AssetCheckSeverity.ERROR, metadata=metadata))
        yield from checks

        approved = context.run.tags.get(APPROVAL_TAG, "").lower() == "true"
        settings = MassChangeSettings.from_env()
        rewritten: dict[str, int] = {}
        timings: dict[str, float] = {}
        counts_by_school = ""
        with wh.transaction() as sql:
            verdicts = judge_all(sql, district_id, settings, approved, year.new_year is not None)
            if not blocked and not any(v.blocked for v in verdicts):
                if year.new_year:
                    counts_by_school = per_school_counts(sql, district_id)
                # An approval is recorded only where it overrode the guard (a new school year needs none).
                overridden = overridden_verdict(verdicts) if approved and not year.new_year else None
                publish = Publish(datetime.now(timezone.utc), context.run_id, context.run.tags.get(TRIGGER_TAG, ""),
                                  year.latest_term_start, year.new_year,
                                  approved_how(context.run.tags) if overridden else None, overridden)
                counts = publish_district(sql, district_id, marts, project, rewritten, publish,
                                          history_retention_days(), timings, changed_sql)
                record_publish(sql, district_id, plan.fingerprint)
        for verdict in verdicts:
            if verdict.blocked:
                context.log.error(verdict.message)
                blocked.append(verdict.message)
            metadata = {"published_rows": MetadataValue.int(verdict.published or 0),
                        "new_rows": MetadataValue.int(verdict.new), "change": MetadataValue.int(verdict.change),
                        "approved": MetadataValue.bool(approved)}
            if verdict.schools:  # the schools beyond the limit, by id (`status` counts them)
                metadata["schools_beyond_limit"] = MetadataValue.text(", ".join(map(str, verdict.schools)))
            for name, records in (("removed", verdict.removed), ("added", verdict.added)):
                if records is not None:  # over the limit: which records, by id
                    metadata[f"{name}_records"] = MetadataValue.int(records[0])
                    metadata[f"{name}_record_ids"] = MetadataValue.text(
                        ", ".join(records[1]) + (" …" if records[0] > len(records[1]) else ""))
            yield AssetCheckResult(
                asset_key=model_key(verdict.table), check_name=MASS_CHANGE_CHECK, passed=not verdict.blocked,
                severity=AssetCheckSeverity.ERROR, description=verdict.message, metadata=metadata)
        if blocked:
            raise Failure(description=f"District {district_id} not published; the previous version stays. "
                                      + "; ".join(blocked))
        # Rows per table, and per entity the records added/removed/changed (the UI plots them over time).
        metadata = {t: MetadataValue.int(c["rows"]) for t, c in counts.items()}
        metadata |= {f"{t}_{what}": MetadataValue.int(c[what]) for t, c in counts.items() for what in COUNTED if what in c}
        metadata |= timings  # the publish's seconds, and the history's part of them
        metadata |= {f"{entity}_ids_reissued": MetadataValue.int(n) for entity, n in matches.linked.items() if n}
        metadata["identity_seconds"] = identity_seconds  # matching new ids to people who left
        metadata["demographics_shared"] = MetadataValue.bool(parameters["demographics_shared"] == "yes")
        if parameters["demographics_shared"] != "yes":  # the district-level notices of rejected_records
            metadata["notices"] = MetadataValue.text(
                "DEMOGRAPHICS_NOT_SHARED: no student carries any demographic field; no demographics rows published.")
        if year.new_year:
            metadata["new_school_year"] = MetadataValue.text(f"{year.new_year}. By school: {counts_by_school}")
            context.log.info(f"District {district_id}: {year.new_year}; published without the mass-change guard's "
                             "block (last year stays in the history tables).")
        vacuumed = reclaim_space(wh, {**rows_deleted, **rewritten})
        if vacuumed:
            metadata["vacuumed_tables"] = MetadataValue.int(len(vacuumed))
        if wh.kind == "duckdb" and context.run.tags.get(SKIP_ANALYST_COPY_TAG) != "true":
            metadata["analyst_file"] = MetadataValue.path(str(refresh_analyst_file(wh, project.access_classes)))
        yield MaterializeResult(asset_key=PUBLISHED_KEY, metadata=metadata)
        if year.new_year:  # after the warehouse work and the publish's record, never inside them
            name = context.instance.get_run_by_id(context.run_id).tags.get(DISTRICT_NAME_TAG)  # tagged mid-run
            announce_new_school_year(operations, district_id, name, f"{year.new_year}. By school: {counts_by_school}")

    return roster_models
