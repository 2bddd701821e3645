"""The clean roster as Dagster assets: rules → one asset per SQL model → checks → publish.

Every model of `dbt_like_sql/` becomes an asset automatically, with its dependencies read from
its `ref()`/`source()` calls and its column docs from `schema.yml`. Each mart gets a blocking
pandera check; `roster/published` swaps the checked district into schema `roster` only when
every check passed (Dagster skips it when a blocking check fails).
"""

import warnings

from dagster import (
    AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, AssetKey, MaterializeResult,
    MetadataValue, TableColumn, TableSchema, asset, asset_check,
)
import pandera.errors
from dagster._utils.warnings import PreviewWarning

from roster_pipeline.analyst_copy import refresh_analyst_file
from roster_pipeline.contracts import FOREIGN_KEYS, contract_for
from roster_pipeline.mass_change import APPROVAL_TAG, GUARDED_TABLES, judge
from roster_pipeline.settings import MassChangeSettings
from roster_pipeline.partitions import district_partitions
from roster_pipeline.publish import publish_district, read_district_table
from roster_pipeline.raw_assets import OWNER, RAW_GROUP, WAREHOUSE_POOL
from roster_pipeline.resources import RulesResource, WarehouseResource
from roster_pipeline.rules import write_rule_tables
from roster_pipeline.sql_models import BUILD_SCHEMA, PUBLISHED_SCHEMA, RULE_TABLES, SqlModel, SqlProject
from roster_pipeline.sql_runner import build_model, prepare_schemas

# Partitioned asset checks are a Dagster preview feature; we rely on them knowingly (one check
# result per district), so the warning would only add noise to every CLI run.
warnings.filterwarnings("ignore", category=PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")

ROSTER_GROUP = "roster"
RULES_KEY = AssetKey([ROSTER_GROUP, "district_rules"])
PUBLISHED_KEY = AssetKey([ROSTER_GROUP, "published"])
FAILING_ROWS_SHOWN = 10


def model_key(name: str) -> AssetKey:
    return RULES_KEY if name in RULE_TABLES else AssetKey([ROSTER_GROUP, name])


@asset(
    key=RULES_KEY, group_name=ROSTER_GROUP, partitions_def=district_partitions, owners=[OWNER],
    kinds={"python"}, pool=WAREHOUSE_POOL,
    description="The district's effective rules profile (ROSTER_RULES, or the bundled default) as the small "
                "tables the SQL models join: grade crosswalk, subject names, kept subjects, school scope.",
)
def district_rules(context: AssetExecutionContext, warehouse: WarehouseResource, rules: RulesResource):
    district_id = context.partition_key
    profile = rules.profile()
    with warehouse.warehouse().transaction() as sql:
        prepare_schemas(sql)
        counts = write_rule_tables(sql, BUILD_SCHEMA, district_id, profile.for_district(district_id))
    return MaterializeResult(metadata={"rules_file": str(profile.path), **{k: MetadataValue.int(v) for k, v in counts.items()}})


def column_schema(project: SqlProject, model: SqlModel) -> TableSchema | None:
    columns = project.docs.get(model.name, {}).get("columns", {})
    if not columns:
        return None
    return TableSchema(columns=[
        TableColumn(name, str(doc.get("data_type", "varchar")), description=str(doc.get("description", "")).strip())
        for name, doc in columns.items()])


def build_model_asset(project: SqlProject, model: SqlModel, warehouse_kind: str):
    """One asset for one SQL model; it builds the district's slice of the model."""
    doc = project.docs.get(model.name, {})
    where = (f"`{model.relation}` (a view over every district)" if model.materialized == "view"
             else f"`{model.relation}`, one slice per district" + (
                 f"; published to `{PUBLISHED_SCHEMA}.{model.name}`" if model.layer == "marts" else ""))
    metadata = {"sql_file": MetadataValue.path(str(model.path.relative_to(project.sql_dir.parent))),
                "layer": model.layer}
    schema = column_schema(project, model)
    if schema:
        metadata["dagster/column_schema"] = schema

    @asset(
        key=model_key(model.name), group_name=ROSTER_GROUP, partitions_def=district_partitions,
        deps=[model_key(r) for r in dict.fromkeys(model.refs)] + [AssetKey([RAW_GROUP, s]) for s in dict.fromkeys(model.sources)],
        description=f"{doc.get('description') or model.name} Built from {model.path.name} into {where}.",
        owners=[OWNER], kinds={"sql", warehouse_kind}, metadata=metadata, pool=WAREHOUSE_POOL,
    )
    def sql_model(context: AssetExecutionContext, warehouse: WarehouseResource, rules: RulesResource):
        district_id = context.partition_key
        parameters = rules.profile().for_district(district_id).sql_parameters()
        rows = build_model(warehouse.warehouse(), project, model, district_id, parameters)
        if model.materialized == "view":
            return MaterializeResult(metadata={"relation": model.relation})
        return MaterializeResult(metadata={"dagster/row_count": MetadataValue.int(rows), "relation": model.relation})

    return sql_model


def build_contract_check(table: str):
    """A blocking pandera check of one mart's district slice before it is published."""

    @asset_check(
        asset=model_key(table), name="pandera_contract", blocking=True, partitions_def=district_partitions,
        pool=WAREHOUSE_POOL,
        description=f"Pandera contract of roster.{table}: types, keys, formats, grade range, foreign keys. "
                    "A failure blocks the district's publish.",
    )
    def contract_check(context, warehouse: WarehouseResource, rules: RulesResource) -> AssetCheckResult:
        district_id = context.partition_key
        wh = warehouse.warehouse()
        frame = read_district_table(wh, BUILD_SCHEMA, table, district_id)
        related = {
            (other, column): set(read_district_table(wh, BUILD_SCHEMA, other, district_id, [column])[column])
            for _, other, column in FOREIGN_KEYS.get(table, [])
        }
        schema = contract_for(table, rules.profile().for_district(district_id), related)
        try:
            schema.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as errors:
            cases = errors.failure_cases
            failing_index = [i for i in cases["index"].dropna().unique() if i in frame.index]
            return AssetCheckResult(
                passed=False, severity=AssetCheckSeverity.ERROR,
                metadata={
                    "failure_count": MetadataValue.int(len(cases)),
                    "rows_checked": MetadataValue.int(len(frame)),
                    "failures": MetadataValue.md(
                        cases[["column", "check", "failure_case"]].head(FAILING_ROWS_SHOWN).to_markdown(index=False)),
                    "first_failing_rows": MetadataValue.md(
                        frame.loc[failing_index[:FAILING_ROWS_SHOWN]].to_markdown(index=False)),
                },
            )
        return AssetCheckResult(passed=True, metadata={"rows_checked": MetadataValue.int(len(frame))})

    return contract_check


def build_mass_change_check(table: str):
    """A blocking check: the district's new version may not change this table abruptly."""

    @asset_check(
        asset=model_key(table), name="mass_change_guard", blocking=True, partitions_def=district_partitions,
        pool=WAREHOUSE_POOL,
        description=f"Blocks the publish when the district's {table} shrink or grow by more than "
                    "ROSTER_MASS_CHANGE_SHARE and ROSTER_MASS_CHANGE_MIN_ROWS against the published version "
                    f"(first publish exempt; approve with the run tag {APPROVAL_TAG}=true).",
    )
    def mass_change_guard(context, warehouse: WarehouseResource) -> AssetCheckResult:
        approved = context.run.tags.get(APPROVAL_TAG, "").lower() == "true"
        verdict = judge(warehouse.warehouse(), table, context.partition_key, MassChangeSettings.from_env(), approved)
        if verdict.blocked:
            context.log.error(verdict.message)
        return AssetCheckResult(
            passed=not verdict.blocked, severity=AssetCheckSeverity.ERROR, description=verdict.message,
            metadata={"published_rows": MetadataValue.int(verdict.published or 0), "new_rows": MetadataValue.int(verdict.new),
                      "change": MetadataValue.int(verdict.change), "approved": MetadataValue.bool(approved)},
        )

    return mass_change_guard


def build_publish_asset(tables: list[str]):
    @asset(
        key=PUBLISHED_KEY, group_name=ROSTER_GROUP, partitions_def=district_partitions, owners=[OWNER],
        deps=[model_key(t) for t in tables], kinds={"sql"}, pool=WAREHOUSE_POOL,
        description="Publishes the district's checked tables into schema `roster` in one transaction: readers "
                    "see the previous complete version or the new one, never a mix, and other districts are "
                    "untouched. Runs only when every blocking pandera check passed.",
    )
    def published(context: AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.warehouse()
        counts = publish_district(wh, context.partition_key, tables)
        metadata = {t: MetadataValue.int(n) for t, n in counts.items()}
        if wh.kind == "duckdb":
            metadata["analyst_file"] = MetadataValue.path(str(refresh_analyst_file(wh)))
        return MaterializeResult(metadata=metadata)

    return published


def build_roster_assets(project: SqlProject, warehouse_kind: str) -> tuple[list, list]:
    """(assets, checks) for the whole `roster` group."""
    marts = [m.name for m in project.marts()]
    assets = [district_rules, *(build_model_asset(project, m, warehouse_kind) for m in project.models.values()),
              build_publish_asset(marts)]
    checks = [build_contract_check(t) for t in marts] + [build_mass_change_check(t) for t in GUARDED_TABLES]
    return assets, checks
