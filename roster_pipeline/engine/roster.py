"""One district's roster build, in one straight order: prepare → models → identities → the models
that read them → contracts → guard and publish → the analysts' copy.

1. Prepare (one turn with the models): schemas, the rules as tables, the district's facts
   (modeling/prepared.py), the build plan (incremental or full, modeling/incremental.py), the
   changed records, the email check.
2. The SQL models in dependency order, each in its own transaction. Identity matching is a
   modeling step: it runs (with the school-year check it needs) right before the first model
   that reads `source('pipeline', 'identity_ambiguities')`, once the marts it matches exist.
3. The pandera contracts, as queries in the warehouse.
4. In one transaction: the guard's verdicts and, when nothing blocks, the publish with its
   history and the build's record.
5. After the publish: space reclaimed (Postgres), the analysts' copy (DuckDB), and the new school
   year announced (best effort, outside every warehouse turn).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone

from roster_pipeline.engine import ENGINE_LOGGER
from roster_pipeline.engine.plan import RosterPlan
from roster_pipeline.engine.previews import preview_markdown
from roster_pipeline.engine.result import ContractOutcome, ModelBuilt, RosterResult
from roster_pipeline.modeling import prepared
from roster_pipeline.modeling.incremental import changed_condition, mark_affected, plan_build, record_publish
from roster_pipeline.modeling.project import SqlModel, SqlProject
from roster_pipeline.modeling.rules import write_rule_tables
from roster_pipeline.modeling.runner import build_model, prepare_schemas
from roster_pipeline.operations.alerts import Alert, post_alert
from roster_pipeline.publishing import identities
from roster_pipeline.publishing.guard import Verdict, judge_all
from roster_pipeline.publishing.history import Publish
from roster_pipeline.publishing.publish import publish_district, publish_plan
from roster_pipeline.publishing.school_year import SchoolYear, per_school_counts, school_year
from roster_pipeline.settings import MassChangeSettings, OperationsSettings, history_retention_days
from roster_pipeline.warehouse.analyst_copy import refresh_analyst_file
from roster_pipeline.warehouse.connection import Statements, Warehouse, placeholder
from roster_pipeline.warehouse.postgres_tables import reclaim_space
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA

log = logging.getLogger(ENGINE_LOGGER)

IDENTITY_TABLE = "identity_ambiguities"  # the pipeline source the identity step writes


def build_roster(wh: Warehouse, project: SqlProject, plan: RosterPlan) -> RosterResult:
    """Build, check and publish one district's roster; never raises for a designed outcome (a failing
    model, contract or guard is in the result, and the published version stays)."""
    district_id = plan.district_id
    district_rules = plan.rules.for_district(district_id)
    result = RosterResult(district_id, approved=plan.approved)
    marts = [m.name for m in project.marts()]
    rows_deleted: dict[str, int] = {}  # dead rows per table, for the vacuum after publish
    operations = OperationsSettings.from_env()
    year = None

    with wh.session() as session:
        started = time.monotonic()
        with session.transaction() as sql:
            prepare_schemas(sql)
            identities.prepare(sql)
            result.rule_rows = write_rule_tables(sql, BUILD_SCHEMA, district_id, district_rules)
            parameters = district_rules.sql_parameters() | prepared.build_parameters(sql, district_id)
            build = plan_build(sql, project, district_id, district_rules, parameters)
            result.affected = mark_affected(sql, district_id) if build.incremental else {}
            emails_started = time.monotonic()
            result.emails = prepared.check_emails(sql, district_id, build.incremental,
                                                  district_rules.email_syntax_checked)
            result.seconds["emails"] = round(time.monotonic() - emails_started, 3)
        result.incremental, result.build_reason = build.incremental, "" if build.incremental else build.reason
        # An incremental build's changed rows per mart: identities match them, contracts check them, publish
        # replaces them.
        changed_rows = {t: rows for t in marts if build.incremental and (rows := project.changed_rows(t))}
        changed_sql = {t: changed_condition(c, wh.kind) for t, c in changed_rows.items()}
        result.demographics_shared = parameters["demographics_shared"] == "yes"
        result.seconds["prepare"] = round(time.monotonic() - started, 3)
        if build.incremental:
            log.info(f"District {district_id}: incremental build of the records changed since the last publish ("
                     + ", ".join(f"{n} {e}s" for e, n in result.affected.items()) + ").")
        else:
            log.info(f"District {district_id}: full build: {build.reason}.")

        started = time.monotonic()
        for model in models_in_order(project):
            if year is None and IDENTITY_TABLE in model.prepared:
                identity_started = time.monotonic()
                with session.transaction() as sql:
                    year, result.identities = match_identities(sql, district_id, changed_sql, operations)
                result.seconds["identities"] = round(time.monotonic() - identity_started, 3)
            built = run_model(session, project, model, district_id, parameters, rows_deleted, build.incremental)
            if isinstance(built, str):
                result.model_failure = built
                return result
            result.models.append(built)
        result.seconds["models"] = round(time.monotonic() - started - result.seconds.get("identities", 0), 3)
        log.info(f"District {district_id}: {len(result.models)} SQL models built in {result.seconds['models']} s.")
        with session.transaction() as sql:
            result.district_name = district_name(sql, district_id)
        if year is None:  # a project without a model reading the identities still needs the school year
            with session.transaction() as sql:
                year, result.identities = match_identities(sql, district_id, changed_sql, operations)

    # pandera and ibis load here, not at import: a process that only lists or loads districts (the
    # CLI before its first Clever request, the code server) does without their second of start-up.
    from roster_pipeline.modeling.contract_check import check_contract, ibis_connection

    # An incremental build with no changed record replaced no row of these tables: nothing to check.
    unchanged = set(changed_rows) if build.incremental and not any(result.affected.values()) else set()
    started = time.monotonic()
    with ibis_connection(wh) as backend:
        for table in marts:
            if table in unchanged:
                result.contracts.append(ContractOutcome(table, True, 0, 0.0))
                continue
            table_started = time.monotonic()
            checked = check_contract(backend, table, district_id, district_rules, changed_rows.get(table))
            result.contracts.append(ContractOutcome(
                table, checked.passed, checked.rows_checked, round(time.monotonic() - table_started, 3),
                checked.failure_count if not checked.passed else 0,
                checked.failures_markdown if not checked.passed else ""))
    result.seconds["contracts"] = round(time.monotonic() - started, 3)
    log.info(f"District {district_id}: {len(result.contracts)} contracts checked in {result.seconds['contracts']} s, "
             f"{sum(not c.passed for c in result.contracts)} failed.")

    started = time.monotonic()
    counts_by_school = ""
    with wh.transaction() as sql:
        result.verdicts = judge_all(sql, district_id, MassChangeSettings.from_env(), plan.approved,
                                    year.new_year is not None)
        if not result.blocked:
            if year.new_year:
                counts_by_school = per_school_counts(sql, district_id)
            # An approval is recorded only where it overrode the guard (a new school year needs none).
            overridden = overridden_verdict(result.verdicts) if plan.approved and not year.new_year else None
            publish = Publish(datetime.now(timezone.utc), plan.run_id, plan.trigger, year.latest_term_start,
                              year.new_year, plan.approved_how if overridden else None, overridden)
            publish_result = publish_district(sql, district_id, publish_plan(project, marts, changed_sql), publish,
                                              history_retention_days())
            result.counts = publish_result.counts
            record_publish(sql, district_id, build.fingerprint)
            result.published = True
            result.seconds |= publish_result.seconds
    result.seconds["guard_and_publish"] = round(time.monotonic() - started, 3)
    for verdict in result.verdicts:
        if verdict.blocked:
            log.error(verdict.message)
    if not result.published:
        return result
    log.info(f"District {district_id}: published in {result.seconds['guard_and_publish']} s "
             f"(the publish transaction {result.seconds.get('publish_seconds', 0)} s).")

    if year.new_year:
        result.new_school_year = f"{year.new_year}. By school: {counts_by_school}"
        log.info(f"District {district_id}: {year.new_year}; published without the mass-change guard's block "
                 "(last year stays in the history tables).")
    result.vacuumed = reclaim_space(wh, {**rows_deleted, **publish_result.rewritten})
    if wh.kind == "duckdb" and plan.analyst_copy:
        started = time.monotonic()
        result.analyst_file = refresh_analyst_file(wh, project.access_classes)
        result.seconds["analyst_copy"] = round(time.monotonic() - started, 3)
        log.info(f"District {district_id}: analysts' copy written in {result.seconds['analyst_copy']} s.")
    if year.new_year:  # after the warehouse work and the publish's record, never inside them
        announce_new_school_year(operations, district_id, result.district_name, result.new_school_year)
    return result


def models_in_order(project: SqlProject) -> list[SqlModel]:
    """The build order with the models that read the identity step's table (and everything built on
    them) last, so the identity step runs once, after every mart it matches."""
    order = project.build_order()
    after: set[str] = set()
    for model in order:  # dependency order: a model's refs are decided before it
        if IDENTITY_TABLE in model.prepared or any(r in after for r in model.refs):
            after.add(model.name)
    return [m for m in order if m.name not in after] + [m for m in order if m.name in after]


def match_identities(sql: Statements, district_id: str, changed_sql: dict[str, str],
                     operations: OperationsSettings) -> tuple[SchoolYear, identities.Matches]:
    """Whether this build starts a new school year, and the re-issued ids matched to people who left
    (`changed_sql`: an incremental build's changed rows per table, matched alone)."""
    year = school_year(sql, district_id, operations.school_year_start, datetime.now(timezone.utc))
    matches = identities.match(sql, district_id, changed_sql, year.new_year is not None)
    for entity, linked in matches.linked.items():
        if linked or matches.ambiguous[entity]:
            log.info(f"District {district_id}: {linked} re-issued {entity} ids linked to the person they named "
                     f"before, {matches.ambiguous[entity]} not linked (IDENTITY_AMBIGUOUS).")
    return year, matches


def run_model(session, project: SqlProject, model: SqlModel, district_id: str, parameters: dict,
              rows_deleted: dict[str, int], incremental: bool) -> ModelBuilt | str:
    """Build one model in its own transaction: what it built, or its error in one sentence."""
    started = time.monotonic()
    try:
        with session.transaction() as sql:
            rows = build_model(sql, project, model, district_id, parameters, rows_deleted, incremental)
            preview = preview_markdown(sql, model, district_id) if model.layer == "marts" else None
            excluded = excluded_by_reason(sql, model.relation, district_id) if model.name == "rejected_records" else {}
    except Exception as exc:  # the sentence only: the exception's text may quote a value
        log.error(f"SQL model {model.path.name} failed for district {district_id}.")
        return f"SQL model {model.path.name} failed for district {district_id}: {sql_error_sentence(exc)}"
    return ModelBuilt(model.name, model.relation, round(time.monotonic() - started, 3),
                      "incremental" if incremental and project.changed_rows(model) else "full",
                      None if model.materialized == "view" else rows, preview, excluded)


def district_name(sql: Statements, district_id: str) -> str | None:
    row = sql.execute(f"select name from {BUILD_SCHEMA}.districts where district_id = "
                      f"{placeholder(sql.dialect, 'd')}", {"d": district_id}).fetchone()
    return row[0] if row and row[0] else None


def excluded_by_reason(sql: Statements, relation: str, district_id: str) -> dict[str, int]:
    """Rows per reason code (`excluded/<CODE>`, `field_nulled/<CODE>`), for the UI and its plots."""
    sql.execute(f"select action, reason_code, count(*) from {relation} where district_id = "
                f"{placeholder(sql.dialect, 'd')} group by action, reason_code order by 1, 2", {"d": district_id})
    return {f"{action}/{code}": rows for action, code, rows in sql.fetchall()}


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


def overridden_verdict(verdicts: list[Verdict]) -> str | None:
    """The sentences of the verdicts an approval let through (over the limit), as the guard would have
    blocked them; None when no table was over the limit (the approval overrode nothing)."""
    over = [v.message.split(": above the limit, ")[0].rstrip(".") + "." for v in verdicts if v.removed is not None]
    return " ".join(over) or None


def announce_new_school_year(operations: OperationsSettings, district_id: str, name: str | None, why: str) -> None:
    """Tell people (ROSTER_ALERT_WEBHOOK_URL) that a district rolled over; best effort, never failing the
    build. Called last, once the warehouse work is done: a slow receiver costs at most post_alert's
    deadline and holds no warehouse turn."""
    if operations.alert_webhook_url is not None:
        why = why.removeprefix("new school year: ")  # the headline already says so
        post_alert(operations.alert_webhook_url, allow_private=operations.alert_webhook_allow_private, alert=Alert(
            district_id, name, "new school year", why[:1].upper() + why[1:],
            "nothing to do unless the counts look wrong: last year's roster stays in the history tables "
            "(roster.<table>_history), and the school confirmation pages show the new year."))
