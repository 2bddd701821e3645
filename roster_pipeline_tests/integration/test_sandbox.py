"""The sandbox serves objects that match Clever's published OpenAPI definitions (v3.1).

`clever_v3_1_schema_facts.json` holds the definitions we need, extracted from the public
Clever/swagger-api repository's `v3.1.yml`. Only the deliberate dirty values may break them.
"""

import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from roster_pipeline.sandbox.dirty_values import BAD_DOBS, DIRTY_GRADES, GARBAGE_GRADES
from roster_pipeline.sandbox.districts import SandboxData

FACTS = json.loads((Path(__file__).parents[1] / "fixtures" / "clever_v3_1_schema_facts.json").read_text())
DELIBERATE = {"grade": set(DIRTY_GRADES) | set(GARBAGE_GRADES), "dob": set(BAD_DOBS)}
COLLECTION_SCHEMAS = {"districts": "District", "schools": "School", "users": "User", "sections": "Section",
                      "courses": "Course", "terms": "Term"}


def to_json_schema(node):
    """Swagger 2.0 → JSON Schema: `x-nullable` strings may be null; nullable objects stay objects.

    (The sandbox never sends a null object, and keeping `$ref`s bare keeps error paths precise.)
    """
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k not in ("x-nullable", "format")}
    if node.get("x-nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


DEFINITIONS = to_json_schema(FACTS["definitions"])


def validator(name: str):
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{name}", "definitions": DEFINITIONS})


def fetch_all(sandbox, spec, collection):
    host = sandbox.base_url
    url, objects = f"{host}/v3.1/{collection}?limit=10000", []
    with httpx.Client(headers={"Authorization": f"Bearer {spec.token}"}) as http:
        while url:
            body = http.get(url).raise_for_status().json()
            jsonschema.validate(body["links"], {"type": "array", "items": {"$ref": "#/definitions/Link"},
                                                "definitions": DEFINITIONS})
            for item in body["data"]:
                assert item["uri"] == f"/v3.1/{collection}/{item['data']['id']}"
                objects.append(item["data"])
            nxt = [link["uri"] for link in body["links"] if link["rel"] == "next"]
            url = host + nxt[0] if nxt else None
    return objects


@pytest.mark.parametrize("collection", sorted(COLLECTION_SCHEMAS))
def test_every_served_object_matches_clevers_definitions(sandbox, collection):
    check = validator(COLLECTION_SCHEMAS[collection])
    deliberate_seen = 0
    for spec in sandbox.data.specs:
        objects = fetch_all(sandbox, spec, collection)
        assert objects
        for obj in objects:
            for error in check.iter_errors(obj):
                field = error.absolute_path[-1] if error.absolute_path else None
                assert field in DELIBERATE and error.instance in DELIBERATE[field], (
                    f"{collection} {obj['id']}: {error.message} at {list(error.absolute_path)}")
                deliberate_seen += 1
    if collection in ("users", "sections"):
        assert deliberate_seen > 0, "the dirty values should be present and out of Clever's enums"


def test_dirty_data_appears_at_realistic_rates():
    spec = SandboxData(seed=1, districts=1, students=20000).specs[0]
    grades = [spec.build("student", i)["roles"]["student"]["grade"] for i in range(spec.students)]
    dirty = sum(g not in ({"Kindergarten"} | {str(n) for n in range(1, 13)}) for g in grades)
    assert 0.02 < dirty / len(grades) < 0.08
    assert {"Other", "PostGraduate", "Ungraded", "", "PreKindergarten", "13", None, "K", "05", "Grade 3"} <= set(grades)
    emails = [spec.teacher_email(i) for i in range(spec.teachers)]
    normalized = [e.strip().lower() for e in emails if e]
    assert None in emails and "" in emails
    assert any("@" not in e for e in normalized)
    assert len(normalized) - len(set(normalized)) > 0  # some teachers share an address
    assert any(e != e.strip().lower() for e in emails if e)


def test_same_seed_same_data_and_huge_districts_cost_no_memory():
    a = SandboxData(seed=3, districts=1, students=1_000_000).specs[0]
    b = SandboxData(seed=3, districts=1, students=1_000_000).specs[0]
    assert a.build("student", 987_654) == b.build("student", 987_654)
    assert a.token == b.token and a.id == b.id
    # A million students: the last page is built on demand from its cursor.
    objects, last, more = a.scan(("student",), ("student", 999_989), 10000)
    assert len(objects) == 10 and not more and last == ("student", 999_999)
    assert a.count("section") // 8 * 25 >= 1_000_000


def test_sandbox_refuses_bad_tokens_and_oversized_pages(sandbox):
    spec = sandbox.data.specs[0]
    base = sandbox.env()["CLEVER_API_BASE_URL"]
    assert httpx.get(f"{base}/schools", headers={"Authorization": "Bearer nope"}).status_code == 401
    auth = {"Authorization": f"Bearer {spec.token}"}
    assert httpx.get(f"{base}/schools?limit=10001", headers=auth).status_code == 413
    response = httpx.get(f"{base}/schools?limit=10000", headers=auth)
    assert response.status_code == 200 and int(response.headers["X-RateLimit-Remaining"]) >= 0
    one = response.json()["data"][0]["data"]
    assert httpx.get(f"{base}/schools/{one['id']}", headers=auth).json()["data"] == one
    other = sandbox.data.specs[1]
    assert httpx.get(f"{base}/schools/{other.make_id('school', 0)}", headers=auth).status_code == 404


def test_pages_built_ahead_are_the_pages_built_per_request_until_the_data_changes():
    """`--preserialize` (benchmarks) serves the same bytes as building each page per request, and
    forgets them when a school day changes the district."""
    from roster_pipeline.sandbox.server import start_sandbox

    servers = [start_sandbox(SandboxData(seed=9, districts=1, students=12_000), requests_per_minute=10**6,
                             preserialize=ahead) for ahead in (False, True)]
    try:
        assert servers[0].preserialize_pages() == 0
        assert servers[1].preserialize_pages() > 10 * 2**20  # ~12k users and their sections, as JSON

        def collections(server):
            spec = server.data.specs[0]
            return {name: fetch_all(server, spec, name) for name in ("users", "sections")}

        fresh, ahead = collections(servers[0]), collections(servers[1])
        assert len(fresh["users"]) > 12_000 and fresh == ahead
        for server in servers:
            httpx.post(f"{server.base_url}/sandbox/advance-day", json={"share": 0.05}, timeout=60).raise_for_status()
        changed_fresh, changed_ahead = collections(servers[0]), collections(servers[1])
        assert changed_fresh == changed_ahead and changed_ahead != ahead
    finally:
        for server in servers:
            server.shutdown()


def test_a_new_school_year_and_reissued_ids_are_served_with_their_events():
    """Rollover: new terms, every section new (in them), students a grade up, twelfth graders gone,
    a new kindergarten; re-issued ids: the same person (name, state id) under a new id."""
    from roster_pipeline.sandbox.server import start_sandbox

    server = start_sandbox(SandboxData(seed=5, districts=1, students=1_300))
    try:
        spec = server.data.specs[0]

        def served():
            return {name: {o["id"]: o for o in fetch_all(server, spec, name)}
                    for name in ("users", "sections", "terms")}

        def students(objects):
            return {i: o for i, o in objects["users"].items() if "student" in o["roles"]}

        before = served()
        post = lambda path, **body: httpx.post(f"{server.base_url}/sandbox/{path}", json=body,  # noqa: E731
                                               timeout=60).raise_for_status().json()
        changes = post("new-school-year")["changes"][spec.id]
        after = served()
        old_terms = {t["start_date"] for t in before["terms"].values()}
        new_terms = {i for i, t in after["terms"].items() if t["start_date"] > max(old_terms)}
        assert len(new_terms) == 2 and {s["term_id"] for s in after["sections"].values()} == new_terms
        assert not set(after["sections"]) & set(before["sections"])
        assert len(after["sections"]) == len(before["sections"]) == changes["sections_started"]
        old, new = students(before), students(after)
        graduates = [i for i, s in old.items() if s["roles"]["student"]["grade"] == "12"]
        assert graduates and not set(graduates) & set(new) and changes["graduated"] >= len(graduates)
        kindergarten = set(new) - set(old)
        assert len(kindergarten) == changes["kindergarten"] > 0
        grades = [new[i]["roles"]["student"]["grade"] for i in kindergarten]  # some dirty, as on day one
        assert grades.count("Kindergarten") > 0.8 * len(grades)
        promoted = [i for i in set(old) & set(new) if old[i]["roles"]["student"]["grade"] == "4"]
        assert promoted and all(new[i]["roles"]["student"]["grade"] == "5" for i in promoted)
        assert all(new[i]["roles"]["student"][f] == old[i]["roles"]["student"][f] for i in promoted
                   for f in ("dob", "graduation_year", "sis_id", "state_id"))  # the same person, a year older
        sixth = [i for i in set(old) & set(new) if old[i]["roles"]["student"]["grade"] == "5"]
        assert all(new[i]["roles"]["student"]["school"] != old[i]["roles"]["student"]["school"] for i in sixth)
        enrolled = {s for section in after["sections"].values() for s in section["students"]}
        assert kindergarten <= enrolled and not enrolled & set(graduates)

        someone = sorted(set(old) & set(new))[0]
        reissued = post("reissue-id", student=someone, sis_id="S-NEW-1")["new_ids"][spec.id]
        again = students(served())
        assert someone not in again and again[reissued]["name"] == new[someone]["name"]
        assert again[reissued]["roles"]["student"]["sis_id"] == "S-NEW-1"
        assert again[reissued]["roles"]["student"]["state_id"] == new[someone]["roles"]["student"]["state_id"]
        types = [e["type"] for e in spec.events.events[-2:]]
        assert types == ["users.deleted", "users.created"]
        with pytest.raises(httpx.HTTPStatusError):
            post("reissue-id", student=spec.make_id("student", 10**9))
    finally:
        server.shutdown()
