"""The fast Arrow ingestion path loads exactly what a plain row-by-row Python reading of the API gives.

Pages reach dlt as Arrow tables (C conversion, vectorized JSON for lists, a per-value fallback
for wrong-typed values). This test reads the same sandbox data with a deliberately naive dict
path — page with httpx, walk each object's fields in Python, JSON-encode what is not a string —
and compares every raw table row for row, on the hand-made dirty district (every dirty case)
plus a generated district and a hostile one (numbers, objects and lists where strings belong,
control characters and quotes inside lists).
"""

from __future__ import annotations

import copy

import duckdb
import httpx
import orjson

from roster_pipeline.clever.settings import LIST, ORDERED_PAIR_TABLES, SECTION_PAIR_TABLES, TABLES
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, TOKEN, handmade_district, run_sync, student


def page_all(base_url: str, token: str, path: str, params: dict) -> list[dict]:
    objects, url, query = [], f"{base_url}/{path}", {"limit": 10000, **params}
    host = base_url.split("/v3.1")[0]
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        while url:
            body = http.get(url, params=query).json()
            objects += [item["data"] for item in body["data"]]
            url = next((host + link["uri"] for link in body.get("links", []) if link["rel"] == "next"), None)
            query = None
    return objects


def as_text(value):
    """The dict path's reading of one scalar field: strings as they are, anything else as JSON."""
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


def field(obj: dict, path: tuple[str, ...], kind):
    value = obj
    for key in path:
        if not isinstance(value, dict):
            return None  # a scalar where an object belongs carries none of its fields
        value = value.get(key)
    if kind == LIST and value is not None:
        items = value if isinstance(value, list) else [value]
        return orjson.dumps([as_text(i) for i in items if i is not None]).decode()
    return as_text(value)


def dict_path_rows(base_url: str, token: str, district_id: str) -> dict[str, list[tuple]]:
    rows: dict[str, list[tuple]] = {}
    for table, (path, params, columns) in TABLES.items():
        objects = page_all(base_url, token, path, params)
        rows[table] = [(district_id, *(field(o, p, k) for n, p, k in columns if not (
            table == "sections" and n in SECTION_PAIR_TABLES.values()))) for o in objects]
        if table == "sections":
            for pair_table, list_name in SECTION_PAIR_TABLES.items():
                ordered = pair_table in ORDERED_PAIR_TABLES  # with each id's place in its list (0 first)
                rows[pair_table] = [(district_id, s.get("id"), as_text(i), *((place,) if ordered else ()))
                                    for s in objects for place, i in enumerate(s.get(list_name) or [])
                                    if i is not None]
    return rows


def arrow_path_rows(data_dir, district_id: str, tables) -> dict[str, list[tuple]]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = {}
        for table in tables:
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'clever_raw' "
                "and table_name = ? and column_name not like '\\_dlt%' escape '\\' order by ordinal_position",
                [table]).fetchall()]
            rows[table] = con.execute(f"select {', '.join(columns)} from clever_raw.{table} where district_id = ?",
                                      [district_id]).fetchall()
        return rows


def hostile(district):
    """Wrong-typed values in many fields of otherwise ordinary objects."""
    weird = copy.deepcopy(district.objects["student"][0])
    weird["id"] = "a" * 23 + "9"
    weird["name"] = {"first": 7, "last": ["Lee", None], "middle": {"x": 1}}
    weird["roles"]["student"]["grade"] = 3
    weird["roles"]["student"]["schools"] = ['quote " and \\ backslash', "ünï", None]  # vectorized JSON path
    weird["roles"]["student"]["dob"] = True
    district.objects["student"].append(weird)
    scalar_roles = student(60, "4", first="Scalar")
    scalar_roles["roles"] = "student"  # a string where an object belongs
    district.objects["student"].append(scalar_roles)
    teacher = district.objects["teacher"][0]
    teacher["roles"]["teacher"]["schools"] = ["tab\there", "line\nbreak", 'and "quotes"']  # control characters: orjson path
    return district


def test_arrow_path_equals_the_dict_path_on_dirty_generated_and_hostile_data(tmp_path, monkeypatch):
    district = hostile(handmade_district())
    generated = SandboxData(seed=11, districts=1, students=400)
    server = start_sandbox(SandboxData(seed=11, districts=1, students=400, handmade=[district]))
    try:
        spec = generated.specs[0]
        for name in ("CLEVER_CLIENT_ID", "CLEVER_CLIENT_SECRET", "ROSTER_RULES", "DAGSTER_HOME", "ROSTER_WAREHOUSE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("CLEVER_API_BASE_URL", server.env()["CLEVER_API_BASE_URL"])
        monkeypatch.setenv("CLEVER_DISTRICT_TOKENS", f"{DISTRICT_ID}={TOKEN},{spec.id}={spec.token}")
        monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.chdir(tmp_path)
        code, out = run_sync()
        assert code == 0, out
        base_url = server.env()["CLEVER_API_BASE_URL"]
        for district_id, token in ((DISTRICT_ID, TOKEN), (spec.id, spec.token)):
            expected = dict_path_rows(base_url, token, district_id)
            loaded = arrow_path_rows(tmp_path / "data", district_id, expected)
            for table, rows in expected.items():
                assert sorted(loaded[table], key=repr) == sorted(rows, key=repr), (district_id, table)
            assert sum(map(len, expected.values())) > 50  # the comparison covered real data
    finally:
        server.shutdown()
        server.server_close()
