"""A hostile, broken or slow Clever: the token goes nowhere else and no answer holds up the night.

Each server here is a real HTTP server on 127.0.0.1 (roster_pipeline_tests/fixtures/hostile_clever.py)
that records what it was sent.
"""

from __future__ import annotations

import logging
import random
import time

import dlt
import pytest
from pydantic import SecretStr

from roster_pipeline.clever.client import CleverAPIError, CleverClient, discover_district_tokens
from roster_pipeline.clever.source import clever_source, object_cap
from roster_pipeline.settings import CleverSettings, ConfigError
from roster_pipeline_tests.fixtures.hostile_clever import API_PREFIX, drip, hostile_server, page, send_json
from roster_pipeline_tests.fixtures.services import free_port

TOKEN = "district-token-must-stay-home"
DISTRICT = "d" * 24


def user(n: int) -> dict:
    return {"id": f"{n:024x}", "roles": {"student": {}}}


def client(base_url: str, **options) -> CleverClient:
    options.setdefault("max_backoff", 0.05)
    return CleverClient(base_url, SecretStr(TOKEN), district_id=DISTRICT, **options)


def collect(cl: CleverClient, collection: str = "users") -> tuple[list[dict], CleverAPIError | None]:
    """The objects a collection yielded before it stopped, and the error it stopped with."""
    rows: list[dict] = []
    try:
        for objects in cl.pages(collection):
            rows += objects
    except CleverAPIError as exc:
        return rows, exc
    return rows, None


@pytest.mark.parametrize("link", ["absolute", "protocol-relative", "other path", "https on the same port"])
def test_a_next_link_off_the_api_is_not_followed_and_never_gets_the_token(link):
    with hostile_server(lambda h: send_json(h, page([user(99)], None))) as foreign:
        targets = {
            "absolute": f"{foreign.base_url}/users?starting_after={user(2)['id']}",
            "protocol-relative": f"//127.0.0.1:{foreign.port}{API_PREFIX}/users?starting_after={user(2)['id']}",
            "other path": f"/v2.0/users?starting_after={user(2)['id']}",
            "https on the same port": None,  # filled in once the main server's port is known
        }

        def main_answer(h):
            if h.path.startswith(API_PREFIX + "/users?"):
                send_json(h, page([user(1), user(2)], targets[link]))
            else:
                send_json(h, page([user(98)], None))

        with hostile_server(main_answer) as main:
            targets["https on the same port"] = f"https://127.0.0.1:{main.port}{API_PREFIX}/users?starting_after=x"
            with client(main.base_url) as cl:
                rows, error = collect(cl)
    assert foreign.requests == []  # no request at all, so surely no token
    assert [seen.path.split("?")[0] for seen in main.requests] == [f"{API_PREFIX}/users"]
    assert [r["id"] for r in rows] == [user(1)["id"], user(2)["id"]]  # nothing from elsewhere
    assert error is not None and "gave a next link outside" in str(error) and not error.transient
    assert TOKEN not in str(error) and str(error).count(". ") == 0


@pytest.mark.parametrize("variable", ["CLEVER_API_BASE_URL", "CLEVER_OAUTH_TOKENS_URL"])
def test_plain_http_is_refused_unless_the_host_is_this_machine(variable):
    env = {"CLEVER_DISTRICT_TOKENS": f"{DISTRICT}=secret-token-1"}
    for url in ("http://api.clever.com/v3.1", "http://10.0.0.5:8080/v3.1", "http://127.0.0.1.evil.example/v3.1"):
        with pytest.raises(ConfigError, match=f"{variable} must use https") as error:
            CleverSettings.from_env({**env, variable: url})
        assert "secret-token-1" not in str(error.value)
    for url in ("https://api.clever.com/v3.1", "http://127.0.0.1:8080/v3.1", "http://127.3.4.5/v3.1",
                "http://localhost:8080/v3.1", "http://[::1]:8080/v3.1"):
        assert url in (CleverSettings.from_env({**env, variable: url}).api_base_url,
                       CleverSettings.from_env({**env, variable: url}).oauth_tokens_url)


@pytest.mark.parametrize("headers_too", [False, True], ids=["body drips", "headers drip"])
def test_a_dripping_answer_fails_within_the_deadline_times_attempts(headers_too):
    """One byte every 0.3 s never trips a per-read timeout; the whole-request deadline (1 s) does."""
    with hostile_server(lambda h: drip(h, every=0.3, for_seconds=15, headers_too=headers_too)) as slow:
        started = time.monotonic()
        with client(slow.base_url, timeout=1, max_attempts=2) as cl, \
                pytest.raises(CleverAPIError, match="failed after 2 attempts; last problem: no complete answer within 1s") as error:
            list(cl.pages("users"))
        elapsed = time.monotonic() - started
    assert error.value.transient
    assert len(slow.requests) == 2
    assert elapsed < 5, f"{elapsed:.1f}s for two 1 s attempts"


@pytest.mark.parametrize("declared", [True, False], ids=["Content-Length", "chunked, no length"])
def test_a_page_above_the_size_cap_fails_with_a_sentence(declared):
    megabyte = b"[" + b" " * (2**20 - 1)

    def huge(h):
        h.send_response(200)
        if declared:
            h.send_header("Content-Length", str(50 * len(megabyte)))
        else:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for _ in range(50):  # 50 MiB, far above the 1 MiB cap
            h.wfile.write(megabyte if declared else b"%x\r\n%s\r\n" % (len(megabyte), megabyte))
        if not declared:
            h.wfile.write(b"0\r\n\r\n")

    with hostile_server(huge) as server, client(server.base_url, max_page_bytes=2**20) as cl:
        started = time.monotonic()
        with pytest.raises(CleverAPIError, match=r"larger than 1,048,576 bytes; stopping") as error:
            list(cl.pages("users"))
    assert not error.value.transient and cl.retries == 0
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("order", ["decreasing", "random"])
def test_cursors_that_do_not_move_forward_stop_the_collection_at_once(order):
    """Clever pages in id order; a fresh cursor that is not above the last one means a looping server."""
    numbers = {"decreasing": range(0xffff, 0xffff - 500, -1),
               "random": random.Random(27).sample(range(10**6), 500)}[order]
    cursors = [f"{n:024x}" for n in numbers]
    first_back = next(i for i in range(1, len(cursors)) if cursors[i] <= cursors[i - 1])

    def answer(h):
        served = len(server.requests)  # this request's number, 1-based
        more = f"{API_PREFIX}/users?starting_after={cursors[served - 1]}" if served < len(cursors) else None
        send_json(h, page([user(served)], more))

    with hostile_server(answer) as server, client(server.base_url) as cl:
        rows, error = collect(cl)
    assert error is not None and "did not advance" in str(error)
    assert len(server.requests) == first_back + 1  # not one page past the first cursor that went back
    assert len(rows) == first_back + 1


@pytest.mark.parametrize("per_page", [10, 0], ids=["full pages", "empty pages"])
def test_endless_fresh_cursors_stop_at_the_collection_cap(per_page, monkeypatch):
    """Each cursor above the last, forever (the server stops at 3000 pages): the cap ends it, quickly."""
    monkeypatch.setenv("CLEVER_MAX_OBJECTS_PER_COLLECTION", "100")

    def answer(h):
        served = len(server.requests)
        more = f"{API_PREFIX}/users?starting_after={user(served * 10)['id']}" if served < 3000 else None
        send_json(h, page([user(served * 10 + i) for i in range(per_page)], more))

    started = time.monotonic()
    with hostile_server(answer) as server, client(server.base_url, page_size=10) as cl:
        rows, error = collect(cl)
    assert error is not None and "stopping instead of paging without end" in str(error)
    assert len(rows) <= 100
    assert len(server.requests) <= 2 * 100 // 10 + 10
    assert time.monotonic() - started < 10


def test_a_refused_connection_fails_in_seconds_not_minutes():
    """A wrong port (or host) is not a busy Clever: two quick retries, then one sentence."""
    base = f"http://127.0.0.1:{free_port()}/v3.1"
    started = time.monotonic()
    with CleverClient(base, SecretStr(TOKEN), district_id=DISTRICT) as cl:  # default backoff: up to 30 s
        with pytest.raises(CleverAPIError, match="Could not connect to Clever at 127.0.0.1") as error:
            list(cl.pages("schools"))
    assert time.monotonic() - started < 10
    assert "CLEVER_API_BASE_URL" in str(error.value) and TOKEN not in str(error.value)


def tokens_from(answer, caplog) -> dict[str, str]:
    with hostile_server(answer) as endpoint:
        settings = CleverSettings.from_env({"CLEVER_CLIENT_ID": "app", "CLEVER_CLIENT_SECRET": "app-secret",
                                            "CLEVER_OAUTH_TOKENS_URL": f"{endpoint.origin}/oauth/tokens"})
        with caplog.at_level(logging.WARNING, logger="roster_pipeline.clever.client"):
            return {d: t.get_secret_value() for d, t in discover_district_tokens(settings, timeout=5).items()}


def test_a_malformed_token_entry_is_skipped_and_the_other_districts_kept(caplog):
    good = [{"owner": {"type": "district", "id": "a" * 24}, "access_token": "tok-a"},
            {"owner": {"type": "district", "id": "b" * 24}, "access_token": "tok-b"}]
    bad = [{"owner": {"type": "district", "id": "../../etc"}, "access_token": "tok-bad-id"},
           {"owner": {"type": "district", "id": "c" * 24}},
           "not an entry",
           {"owner": "district", "access_token": "tok-no-owner"}]
    tokens = tokens_from(lambda h: send_json(h, {"data": [good[0], *bad, good[1]]}), caplog)
    assert tokens == {"a" * 24: "tok-a", "b" * 24: "tok-b"}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [m.split(":")[1].split()[1] for m in skipped] == ["2", "3", "4", "5"]  # by position
    assert not any(t in caplog.text for t in ("tok-", "../../etc"))


@pytest.mark.parametrize("body", [b"<html><body>Sign in</body></html>", b'{"error": "nope"}', b'{"data": "x"}', b"[1]"])
def test_a_token_answer_that_is_no_list_of_tokens_is_one_sentence(body, caplog):
    def answer(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    with pytest.raises(CleverAPIError, match=r"answered 200 without a JSON list of tokens \(`data`\); check the URL\.$"):
        tokens_from(answer, caplog)


def test_a_dripping_token_endpoint_fails_within_its_deadline(caplog):
    """Discovery asks Clever first every night: a token endpoint that drips must not hold the night."""
    started = time.monotonic()
    with hostile_server(lambda h: drip(h, every=0.3, for_seconds=20, headers_too=False)) as endpoint:
        settings = CleverSettings.from_env({"CLEVER_CLIENT_ID": "app", "CLEVER_CLIENT_SECRET": "app-secret",
                                            "CLEVER_OAUTH_TOKENS_URL": f"{endpoint.origin}/oauth/tokens"})
        with pytest.raises(CleverAPIError, match=r"CLEVER_OAUTH_TOKENS_URL .* gave no complete answer within 1s\.$"):
            discover_district_tokens(settings, timeout=1)
    assert time.monotonic() - started < 5


def test_a_collection_may_grow_tenfold_but_not_without_end():
    """What the district held at its last sync caps its paging; a first sync, or a set variable, the ceiling."""
    assert object_cap(None, {}) == object_cap(0, {}) == 5_000_000
    assert object_cap(300, {}) == 100_000 and object_cap(40_000, {}) == 400_000
    assert object_cap(900_000, {}) == 5_000_000
    assert object_cap(300, {"CLEVER_MAX_OBJECTS_PER_COLLECTION": "2000000"}) == 2_000_000


def test_the_dlt_source_stops_a_known_district_that_pages_without_end(tmp_path):
    """The raw load passes what the district held (students: 300) down to the paging: an endless
    server is stopped at 100,000 objects (ten times 300, at least 100,000), not at the 5,000,000 ceiling."""
    def answer(h):
        served = len(server.requests)
        send_json(h, page([user(served * 10_000 + i) for i in range(10_000)],
                          f"{API_PREFIX}/users?starting_after={user(served * 10_000 + 9_999)['id']}"))

    with hostile_server(answer) as server:
        source = clever_source(DISTRICT, SecretStr(TOKEN), server.base_url, known_rows={"students": 300})
        pipeline = dlt.pipeline("endless", destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
                                pipelines_dir=str(tmp_path / "dlt"))
        with pytest.raises(Exception) as error:
            pipeline.extract(source.with_resources("students"))
    assert "passed 100,000 objects" in str(error.value)
    assert len(server.requests) == 11  # 10 pages of 10,000, and the one that passed the cap
