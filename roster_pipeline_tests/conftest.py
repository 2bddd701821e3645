"""Shared fixtures: a real sandbox over HTTP, a temporary data folder, environment pointing at both."""

from __future__ import annotations

import httpx
import pytest

from roster_pipeline.sandbox.data import SandboxData
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


@pytest.fixture
def pipeline_env(tmp_path, monkeypatch, sandbox):
    """Environment of a fresh installation pointed at the sandbox, with its data under tmp_path."""
    for name in CLEVER_VARS:
        monkeypatch.delenv(name, raising=False)
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


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
