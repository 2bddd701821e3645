"""The Definitions load, and every asset is partitioned by district and documented."""

import subprocess
import sys
from pathlib import Path

from dagster import DynamicPartitionsDefinition

from roster_pipeline.clever.source import raw_tables

PROJECT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_every_raw_table_as_a_partitioned_asset(pipeline_env):
    from roster_pipeline.definitions import build_definitions

    specs = {spec.key.to_user_string(): spec for spec in build_definitions().resolve_all_asset_specs()}
    assert set(specs) == {f"clever_raw/{table}" for table in raw_tables()}
    for key, spec in specs.items():
        assert isinstance(spec.partitions_def, DynamicPartitionsDefinition), key
        assert spec.partitions_def.name == "district", key
        assert spec.group_name == "clever_raw", key
        assert spec.description and len(spec.description) > 40, key
        assert {"dlt", "duckdb"} <= set(spec.kinds), key
        assert spec.owners, key


def test_dagster_validates_the_workspace(pipeline_env, tmp_path, monkeypatch):
    # A local instance: the project's dagster.yaml is the Postgres production one.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", str(PROJECT / "workspace.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
