"""The Clever client and dlt source against the sandbox over real HTTP."""

import time

import dlt
import duckdb
import pytest
from pydantic import SecretStr

from roster_pipeline.clever.client import CleverAPIError, CleverClient, discover_district_tokens
from roster_pipeline.clever.source import clever_source
from roster_pipeline.settings import CleverSettings, ConfigError


def client_for(sandbox, spec, **options) -> CleverClient:
    options.setdefault("max_backoff", 0.05)
    return CleverClient(sandbox.env()["CLEVER_API_BASE_URL"], SecretStr(spec.token), district_id=spec.id, **options)


def test_paging_follows_next_links_across_many_pages(clean_faults):
    spec = clean_faults.data.specs[0]
    with client_for(clean_faults, spec, page_size=7) as client:
        pages = list(client.pages("users", {"role": "student"}))
    ids = [obj["id"] for page in pages for obj in page]
    assert len(pages) == -(-spec.students // 7)  # ceil: a full page at the end still says more
    assert len(ids) == len(set(ids)) == spec.students


def test_share_by_schools_gives_empty_pages_that_still_carry_next(clean_faults):
    spec = clean_faults.data.specs[1]
    assert spec.share_by_schools
    with client_for(clean_faults, spec, page_size=5) as client:
        pages = list(client.pages("users", {"role": "student"}))
    assert any(len(page) == 0 for page in pages[:-1]), "expected empty pages in the middle of the collection"
    expected = sum(spec.visible("student", i) for i in range(spec.students))
    assert 0 < sum(len(p) for p in pages) == expected < spec.students


def test_429_waits_until_the_rate_limit_reset(clean_faults):
    spec = clean_faults.data.specs[0]
    clean_faults.faults.configure({"status": 429, "count": 2, "reset_in": 1})
    started = time.monotonic()
    with client_for(clean_faults, spec) as client:
        schools = [obj for page in client.pages("schools") for obj in page]
        assert client.retries == 2
    assert len(schools) == spec.schools
    assert time.monotonic() - started >= 0.5  # it waited for X-RateLimit-Reset, not a tight loop


def test_503_is_retried_with_backoff(clean_faults):
    spec = clean_faults.data.specs[0]
    clean_faults.faults.configure({"status": 503, "count": 3})
    with client_for(clean_faults, spec) as client:
        terms = [obj for page in client.pages("terms") for obj in page]
        assert client.retries == 3
    assert len(terms) == 2


def test_persistent_5xx_fails_after_bounded_attempts(clean_faults):
    spec = clean_faults.data.specs[0]
    clean_faults.faults.configure({"status": 502, "count": 100})
    with client_for(clean_faults, spec, max_attempts=3) as client, pytest.raises(CleverAPIError, match="after 3 attempts"):
        list(client.pages("terms"))


def test_401_fails_clearly_and_never_shows_the_token(clean_faults):
    base = clean_faults.env()["CLEVER_API_BASE_URL"]
    with CleverClient(base, SecretStr("revoked-token-123"), district_id="a" * 24) as client:
        with pytest.raises(CleverAPIError, match="refused the district token \\(401\\)") as error:
            list(client.pages("students"))
    assert "revoked-token-123" not in str(error.value)
    assert client.retries == 0


def test_413_above_the_clever_limit_is_not_retried(clean_faults):
    spec = clean_faults.data.specs[0]
    with client_for(clean_faults, spec) as client:
        with pytest.raises(CleverAPIError, match="413"):
            client.get_json(f"{client.base_url}/users", {"limit": "10001"})
        assert client.retries == 0
    with pytest.raises(ConfigError, match="page size"):
        client_for(clean_faults, spec, page_size=20000)


def test_a_cursor_that_does_not_advance_stops_with_an_error(clean_faults):
    spec = clean_faults.data.specs[0]
    clean_faults.faults.configure({"stuck_cursor": True})
    with client_for(clean_faults, spec, page_size=50) as client, pytest.raises(CleverAPIError, match="did not advance"):
        list(client.pages("users", {"role": "student"}))


def test_token_discovery_through_the_oauth_endpoint(clean_faults):
    env = clean_faults.env()
    tokens = discover_district_tokens(CleverSettings.from_env(env))
    assert {d: t.get_secret_value() for d, t in tokens.items()} == {s.id: s.token for s in clean_faults.data.specs}
    assert "sbx_" not in repr(tokens)  # SecretStr keeps tokens out of reprs and logs
    wrong = {**env, "CLEVER_CLIENT_SECRET": "wrong"}
    with pytest.raises(CleverAPIError, match="refused CLEVER_CLIENT_ID/CLEVER_CLIENT_SECRET"):
        discover_district_tokens(CleverSettings.from_env(wrong))


def test_bad_configuration_fails_with_one_sentence_naming_the_variable():
    with pytest.raises(ConfigError, match="CLEVER_DISTRICT_TOKENS"):
        CleverSettings.from_env({"CLEVER_DISTRICT_TOKENS": "not-a-pair"})
    with pytest.raises(ConfigError, match="CLEVER_CLIENT_ID"):
        CleverSettings.from_env({})
    with pytest.raises(ConfigError, match="CLEVER_API_BASE_URL"):
        CleverSettings.from_env({"CLEVER_DISTRICT_TOKENS": "a" * 24 + "=t", "CLEVER_API_BASE_URL": "ftp://x"})


def test_dlt_source_loads_arrow_pages_and_section_pairs_into_duckdb(clean_faults, tmp_path):
    """A tiny page size forces many pages per collection, with a 429 and a 503 on the way."""
    spec = clean_faults.data.specs[1]
    clean_faults.faults.configure({"rate": 0.05})
    pipeline = dlt.pipeline("clever_test", destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
                            dataset_name="clever_raw", pipelines_dir=str(tmp_path / "dlt"))
    source = clever_source(spec.id, SecretStr(spec.token), clean_faults.env()["CLEVER_API_BASE_URL"], page_size=40)
    pipeline.run(source)
    clean_faults.faults.configure({})
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        students = con.execute("select count(*), count(distinct id), min(district_id), max(district_id) from clever_raw.students").fetchone()
        pairs = con.execute("select count(*) from clever_raw.section_students").fetchone()[0]
        listed = con.execute("select count(*) from clever_raw.section_students p join clever_raw.sections s on s.id = p.section_id").fetchone()[0]
        columns = {r[0] for r in con.execute("describe clever_raw.sections").fetchall()}
    visible = sum(spec.visible("student", i) for i in range(spec.students))
    assert students == (visible, visible, spec.id, spec.id)
    assert pairs == listed > visible * 3  # every student sits in 4-8 sections
    assert "students" not in columns and "teachers" not in columns  # the id lists live in pair tables
