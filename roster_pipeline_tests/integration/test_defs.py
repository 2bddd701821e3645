"""The Definitions load, and every asset is partitioned by district and documented."""

import subprocess
import sys
from pathlib import Path

from dagster import DynamicPartitionsDefinition

from roster_pipeline.clever.source import raw_tables
from roster_pipeline.modeling.project import SqlProject

PROJECT = Path(__file__).resolve().parents[2]


def test_definitions_load_and_every_asset_is_partitioned_by_district(pipeline_env):
    from roster_pipeline.definitions import build_definitions

    defs = build_definitions()
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    project = SqlProject()
    raw = {f"clever_raw/{table}" for table in raw_tables()}
    models = {f"roster/{name}" for name in project.models}
    prepared = {"/".join(meta["dagster"]["asset_key"]) for meta in project.source_tables["pipeline"]["meta"].values()}
    assert prepared == {"roster/email_syntax", "roster/changed_records", "roster/identities"}
    assert set(specs) == raw | models | prepared | {"roster/district_rules", "roster/published",
                                                    "reports/school_confirmation"}
    for key, spec in specs.items():
        assert isinstance(spec.partitions_def, DynamicPartitionsDefinition), key
        assert spec.partitions_def.name == "district", key
        assert spec.group_name == ("clever_raw" if key in raw else key.split("/")[0]), key
        assert spec.description and len(spec.description) > 40, key
        assert spec.kinds, key
        if key in raw:
            assert {"dlt", "duckdb"} <= set(spec.kinds), key
        if key in models:
            assert {"sql", "duckdb"} <= set(spec.kinds), key
        assert spec.owners, key


def test_sql_models_become_assets_with_ref_lineage_and_column_docs(pipeline_env):
    from roster_pipeline.definitions import build_definitions

    defs = build_definitions()
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    project = SqlProject()
    for name, model in project.models.items():
        spec = specs[f"roster/{name}"]
        deps = {dep.asset_key.to_user_string() for dep in spec.deps}
        expected = {"roster/district_rules" if r.startswith("rules_") else f"roster/{r}" for r in model.refs}
        expected |= {"/".join(project.source_tables["pipeline"]["meta"][t]["dagster"]["asset_key"]) for t in model.prepared}
        assert deps == expected | {f"clever_raw/{s}" for s in model.sources}, name
        schema = spec.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == list(project.docs[name]["columns"]), name
        assert all(c.description for c in schema.columns), name
    # The emails the classified models join are written before them, from the raw people.
    assert {d.asset_key.to_user_string() for d in specs["roster/email_syntax"].deps} == {
        "clever_raw/students", "clever_raw/teachers"}
    assert {"int_students__classified", "int_teachers__classified"} <= {
        name for name, model in project.models.items() if "invalid_emails" in model.prepared}
    # Every table SQL reads is declared: the identity step's, after the marts it matches, and the
    # incremental build's changed records, which `changed()` reads.
    assert {d.asset_key.to_user_string() for d in specs["roster/identities"].deps} == {
        "roster/students", "roster/teachers"}
    assert "identity_ambiguities" in project.models["rejected_records"].prepared
    assert "affected_keys" in project.models["int_students__classified"].prepared
    for name, model in project.models.items():
        for layer in ("incremental", "full"):
            sql = project.render(model, "duckdb", layer == "incremental").sql
            assert "roster_build.affected_keys" not in sql or "affected_keys" in model.prepared, name
            assert "roster_build.identity_ambiguities" not in sql or "identity_ambiguities" in model.prepared, name
    published = specs["roster/published"]
    assert {d.asset_key.to_user_string() for d in published.deps} == {f"roster/{m.name}" for m in project.marts()}
    checks = {(c.asset_key.to_user_string(), c.name): c for c in defs.resolve_asset_graph().asset_check_keys
              for c in [defs.resolve_asset_graph().get_check_spec(c)]}
    for mart in project.marts():
        check = checks[(f"roster/{mart.name}", "pandera_contract")]
        assert check.blocking and check.partitions_def is not None


def test_dagster_validates_the_workspace(pipeline_env, tmp_path, monkeypatch):
    # A local instance: the project's dagster.yaml is the Postgres production one.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", str(PROJECT / "workspace.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_warehouse_steps_share_a_pool_on_duckdb_only(pipeline_env, monkeypatch):
    """DuckDB's file takes one process at a time; Postgres runs districts side by side (no pool to wait in)."""
    from roster_pipeline.definitions import build_definitions

    def pools() -> set:
        defs = build_definitions()
        return {node.definition.pool for job in [defs.resolve_job_def("district_sync")]
                for node in job.graph.node_dict.values()}

    assert pools() == {"roster_warehouse"}
    monkeypatch.setenv("ROSTER_WAREHOUSE", "postgresql://postgres@127.0.0.1:5432/not_opened_by_definitions")
    assert pools() == {None}
