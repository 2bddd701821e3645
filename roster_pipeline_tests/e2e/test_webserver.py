"""The Dagster UI explains the project: the webserver's GraphQL API serves the whole asset graph with docs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from roster_pipeline_tests.fixtures.services import free_port

PROJECT = Path(__file__).resolve().parents[2]

ASSET_GRAPH = """
{
  assetNodes {
    assetKey { path }
    groupName
    description
    kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name description blocking } } }
  }
}
"""


def expected_graph() -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Every asset (→ group) and check the project defines, from its own sources of truth."""
    from roster_pipeline.clever.source import raw_tables
    from roster_pipeline.modeling.project import SqlProject
    from roster_pipeline.publishing.guard import GUARDED_TABLES

    project = SqlProject()
    assets = {f"clever_raw/{t}": "clever_raw" for t in raw_tables()}
    assets |= {f"roster/{name}": "roster" for name in [*project.models, "district_rules", "published"]}
    assets["reports/school_confirmation"] = "reports"
    pipeline = project.source_tables["pipeline"]["meta"]  # tables the roster step writes in Python (their yml names the asset)
    assets |= {"/".join(pipeline[t]["dagster"]["asset_key"]): "roster" for t in project.sources["pipeline"]}
    checks = {(f"roster/{m.name}", "pandera_contract") for m in project.marts()}
    checks |= {(f"roster/{t}", "mass_change_guard") for t in GUARDED_TABLES}
    checks.add(("roster/published", "freshness"))
    return assets, checks


def test_webserver_serves_every_asset_group_and_check_with_descriptions(pipeline_env, tmp_path):
    expected_assets, expected_checks = expected_graph()
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(PROJECT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 180
        nodes = None
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            try:
                reply = httpx.post(url, json={"query": ASSET_GRAPH}, timeout=30).json()
            except httpx.HTTPError:
                time.sleep(1)
                continue
            nodes = (reply.get("data") or {}).get("assetNodes")
            if nodes:  # the code location has loaded
                break
            time.sleep(1)
        assert nodes, "the webserver never served the asset graph"
    finally:
        server.terminate()
        server.wait(timeout=60)

    served = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert {k: n["groupName"] for k, n in served.items()} == expected_assets
    assert {"clever_raw", "roster", "reports"} == set(expected_assets.values())
    for key, node in served.items():
        assert len(node["description"] or "") > 30, key
        assert {"team": "data-engineering"} in node["owners"], key
        assert node["kinds"], key
    assert {"dlt", "duckdb"} <= set(served["clever_raw/students"]["kinds"])
    assert {"sql", "duckdb", "pandera"} <= set(served["roster/students"]["kinds"])
    # Lineage: the clean students come from the staging model, which reads the raw table.
    assert ["roster", "int_students__classified"] in [d["path"] for d in served["roster/students"]["dependencyKeys"]]
    assert ["clever_raw", "students"] in [d["path"] for d in served["roster/stg_clever__students"]["dependencyKeys"]]
    assert ["roster", "published"] in [d["path"] for d in served["reports/school_confirmation"]["dependencyKeys"]]
    checks = {(key, c["name"]): c for key, n in served.items()
              for c in (n["assetChecksOrError"] or {}).get("checks", [])}
    assert set(checks) == expected_checks and len(checks) == 16  # 11 contracts, 4 mass-change guards, freshness
    assert all(len(c["description"] or "") > 30 for c in checks.values())
    assert all(c["blocking"] for key, c in checks.items() if key[1] != "freshness")  # freshness judges after the fact
