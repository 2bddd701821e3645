"""Shared fixtures: a real sandbox over HTTP, a temporary data folder, environment pointing at both."""

from __future__ import annotations

import socket
import uuid

import httpx
import psycopg2
import pytest

from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox

CLEVER_VARS = ("CLEVER_API_BASE_URL", "CLEVER_OAUTH_TOKENS_URL", "CLEVER_CLIENT_ID", "CLEVER_CLIENT_SECRET",
               "CLEVER_DISTRICT_TOKENS", "ROSTER_WAREHOUSE", "DAGSTER_HOME", "ROSTER_DATA_DIR")


@pytest.fixture(scope="module")
def sandbox():
    """Two small districts; the second shares only some schools (Share by Schools)."""
    server = start_sandbox(SandboxData(seed=7, districts=2, students=600))
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def clean_faults(sandbox):
    sandbox.faults.configure({})
    yield sandbox
    sandbox.faults.configure({})


WAREHOUSE_KINDS = ["duckdb", "postgres"]


def free_port() -> int:
    """A local TCP port nobody listens on right now (for servers a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def warehouse_env(request, monkeypatch):
    """The warehouse of a test: the DuckDB default, or a fresh Postgres database dropped afterwards.

    Parametrize with `@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)`.
    """
    kind = getattr(request, "param", "duckdb")
    if kind == "duckdb":
        monkeypatch.delenv("ROSTER_WAREHOUSE", raising=False)
        yield kind
        return
    name = f"roster_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"create database {name}")
    monkeypatch.setenv("ROSTER_WAREHOUSE", f"{POSTGRES}/{name}")
    try:
        yield kind
    finally:
        admin.cursor().execute(f"drop database if exists {name} with (force)")
        admin.close()


def warehouse_query(sql: str, params=None) -> list[tuple]:
    """Run a query on the configured warehouse (`?` placeholders on both DuckDB and Postgres)."""
    from roster_pipeline.settings import data_dir, warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse

    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    if warehouse.kind == "postgres":
        sql = sql.replace("?", "%s")
    with warehouse.transaction() as statements:
        return [tuple(row) for row in statements.execute(sql, list(params or [])).fetchall()]


def point_at(server, tmp_path, monkeypatch):
    """Environment of a fresh installation pointed at `server` (a sandbox), data under tmp_path."""
    for name in CLEVER_VARS:
        if name != "ROSTER_WAREHOUSE":
            monkeypatch.delenv(name, raising=False)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


@pytest.fixture
def pipeline_env(tmp_path, monkeypatch, sandbox, warehouse_env):
    """Environment of a fresh installation pointed at the module's sandbox, with its data under tmp_path."""
    return point_at(sandbox, tmp_path, monkeypatch)


def served(base_url: str, token: str) -> dict[str, int]:
    """Count what the sandbox serves for one district, by paging it with plain httpx.

    Deliberately independent of the pipeline's client, so a paging bug there cannot hide itself.
    """
    collections = {
        "districts": ("districts", {}), "schools": ("schools", {}), "courses": ("courses", {}),
        "terms": ("terms", {}), "sections": ("sections", {}),
        "students": ("users", {"role": "student"}), "teachers": ("users", {"role": "teacher"}),
        "staff": ("users", {"role": "staff"}), "district_admins": ("users", {"role": "district_admin"}),
    }
    counts = {"section_students": 0, "section_teachers": 0}
    host = base_url.split("/v3.1")[0]
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        for table, (path, params) in collections.items():
            counts[table] = 0
            url, query = f"{base_url}/{path}", {**params, "limit": 10000}
            while url:
                body = http.get(url, params=query).raise_for_status().json()
                for item in body["data"]:
                    counts[table] += 1
                    if table == "sections":
                        counts["section_students"] += len(item["data"]["students"])
                        counts["section_teachers"] += len(item["data"]["teachers"])
                nxt = [link["uri"] for link in body["links"] if link["rel"] == "next"]
                url, query = (host + nxt[0], None) if nxt else (None, None)
    return counts
