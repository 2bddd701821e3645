"""A Clever-compatible HTTP server over the sandbox's districts.

It speaks the parts of the Clever API v3.1 that the pipeline uses (see the Clever API facts this
project relies on, kept with the shared project docs outside this repository): bearer-token
districts, `/oauth/tokens` discovery with Basic auth, paged collections with `limit`/
`starting_after` and `next` links, 413 above limit 10000, 401 on unknown tokens, and
`X-RateLimit-*` headers with 429 when a token exceeds its per-minute budget (`rate_limit.py`).

Faults for tests and drills are set through `POST /sandbox/faults` (`faults.py` lists them);
`{}` clears them.

Rosters change: `POST /sandbox/advance-day` (`{"share": 0.01, "district": id}` optional) applies
one simulated school day to the generated districts and logs Clever events for it;
`POST /sandbox/share-school` with `{"school": id, "shared": false}` (then `true`) is a district
admin's sharing change: the school's records leave (return) with their events;
`POST /sandbox/pause` with `{"paused": true, "pause_end": ...}` (then `false`) is Clever pausing the
district's syncs for the summer (its district object says so, with an event);
`POST /sandbox/expire-events` forgets every event logged so far (as if 30 days had passed);
`POST /sandbox/events-enabled` with `{"enabled": false}` makes /events answer 403.

`request_log` (a file path; `roster-pipeline sandbox` takes it from ROSTER_SANDBOX_REQUEST_LOG)
appends one line per request, `<epoch seconds> <path>`, at its arrival: a benchmark reads when a
client's first request came (`benchmarks/costs.py`). The path only, never the query, a header
(tokens) or a body; the file is created 0600 like everything else the project writes. The stdlib
server is enough here: the sandbox serves one pipeline at a time, and it keeps the project free
of a web framework.
"""
from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from roster_pipeline.sandbox import school_days
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.faults import Faults
from roster_pipeline.sandbox.generated_district import GeneratedDistrict
from roster_pipeline.sandbox.handmade_district import HandmadeDistrict
from roster_pipeline.sandbox.ids import USER_ROLES
from roster_pipeline.sandbox.rate_limit import RateLimiter

API_PREFIX = "/v3.1"
MAX_LIMIT = 10000
DEFAULT_LIMIT = 100
COLLECTIONS = {  # collection → kinds it pages over, in id order
    "districts": ("district",), "schools": ("school",), "sections": ("section",),
    "courses": ("course",), "terms": ("term",), "users": USER_ROLES,
}


def to_json(body: object) -> bytes:
    """JSON bytes by orjson, or by the standard library for what orjson refuses: a handmade district
    may hold integers beyond 64 bits, which JSON allows and a hostile peer sends. Infinite floats
    become null either way (JSON has no infinity; orjson writes null)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(_finite(body), ensure_ascii=False).encode()


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], data: SandboxData, *, client_id: str = "sandbox-client",
                 client_secret: str = "sandbox-secret", requests_per_minute: int = 1200,
                 preserialize: bool = False, request_log: str | os.PathLike | None = None) -> None:
        super().__init__(address, SandboxHandler)
        # Unbuffered append: each line is one write, whole even with requests on many threads. Open
        # as long as the server (closed by `server_close`), so no context manager.
        self.request_log = open(request_log, "ab", buffering=0,  # noqa: SIM115
                                opener=lambda path, flags: os.open(path, flags, 0o600)) if request_log else None
        # Serialized collection pages (see `page_payload`); None: every page is built per request.
        self.pages: dict[tuple, bytes] | None = {} if preserialize else None
        self.data = data
        self.client_id = client_id
        self.client_secret = client_secret
        self.faults = Faults()
        self.limiter = RateLimiter(requests_per_minute)
        self.requests_served = 0
        self.day = 0

    def advance_day(self, specs: list, share: float) -> dict[str, dict[str, int]]:
        """One simulated school day of changes in each generated district (with their events)."""
        self.day += 1
        changes = {spec.id: school_days.advance_day(spec, self.day, share)
                   for spec in specs if isinstance(spec, GeneratedDistrict)}
        self.forget_pages()
        self.preserialize_pages()  # with `preserialize`, the new day's pages are built ahead too
        return changes

    def page_payload(self, spec, name: str, role: str | None, after: str | None, limit: int) -> bytes:
        """One collection page as the JSON bytes sent; ValueError on a foreign cursor.

        With `preserialize`, pages are kept once built (and built ahead by `preserialize_pages`),
        so that a benchmark's paging measures the client, not this server's Python building
        objects; any change of the data (a school day, a sharing change, a fault) forgets them.
        """
        stuck = self.faults.stuck_cursor and bool(after)
        key = (spec.id, name, role, after, limit, stuck)
        if self.pages is not None and key in self.pages:
            return self.pages[key]
        kinds = COLLECTIONS[name] if role is None else (() if role == "contact" else (role,))
        objects, cursor = spec.page(kinds, after, limit) if kinds else ([], None)
        query = {**({"role": role} if role else {}), "limit": str(limit)}
        links = [{"rel": "self", "uri": f"{API_PREFIX}/{name}?{urlencode({**query, **({'starting_after': after} if after else {})})}"}]
        if cursor:
            links.append({"rel": "next", "uri": f"{API_PREFIX}/{name}?{urlencode({**query, 'starting_after': after if stuck else cursor})}"})
        payload = to_json({"data": [{"data": o, "uri": f"{API_PREFIX}/{name}/{o.get('id') if isinstance(o, dict) else ''}"}
                                    for o in objects], "links": links})
        if self.pages is not None:
            self.pages[key] = payload
        return payload

    def preserialize_pages(self) -> int:
        """Build every page a client paging at the largest limit asks for; returns the bytes held."""
        if self.pages is None:
            return 0
        for spec in self.data.specs:
            for name in COLLECTIONS:
                for role in USER_ROLES if name == "users" else (None,):
                    after = None
                    while True:
                        links = orjson.loads(self.page_payload(spec, name, role, after, MAX_LIMIT))["links"]
                        following = [link["uri"] for link in links if link["rel"] == "next"]
                        if not following:
                            break
                        after = parse_qs(urlsplit(following[0]).query)["starting_after"][-1]
        return sum(len(p) for p in self.pages.values())

    def log_request(self, path: str) -> None:
        if self.request_log is not None:
            self.request_log.write(f"{time.time():.6f} {path}\n".encode())

    def server_close(self) -> None:
        super().server_close()
        if self.request_log is not None:
            self.request_log.close()

    def forget_pages(self) -> None:
        if self.pages is not None:
            self.pages.clear()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The environment variables that point the pipeline at this sandbox."""
        return {
            "CLEVER_API_BASE_URL": f"{self.base_url}{API_PREFIX}",
            "CLEVER_OAUTH_TOKENS_URL": f"{self.base_url}/oauth/tokens",
            "CLEVER_CLIENT_ID": self.client_id,
            "CLEVER_CLIENT_SECRET": self.client_secret,
        }


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxServer

    def log_message(self, format: str, *args) -> None:  # quiet: tests and benchmarks page a lot
        pass

    def send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self.send_payload(status, to_json(body), headers)

    def send_payload(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if getattr(self, "truncate", False):
            self.truncate = False
            self.close_connection = True
            payload = payload[: len(payload) // 2]
        self.wfile.write(payload)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"message": message}, headers)

    def do_POST(self) -> None:
        """Sandbox controls: faults, simulated school days, sharing (schools, demographics), pauses, the
        SIS's last sync, rollover, re-issued ids, event retention and switch."""
        path = urlsplit(self.path).path
        self.server.log_request(path)
        length = int(self.headers.get("Content-Length") or 0)
        body = orjson.loads(self.rfile.read(length) or b"{}")
        specs = [s for s in self.server.data.specs if body.get("district") in (None, s.id)]
        self.server.forget_pages()  # every control may change what a page holds
        if path == "/sandbox/faults":
            self.server.faults.configure(body)
            return self.send_json(200, {"ok": True})
        if path == "/sandbox/advance-day":
            return self.send_json(200, {"changes": self.server.advance_day(specs, float(body.get("share", 0.01)))})
        if path == "/sandbox/share-school":  # {"school": id, "shared": false}: a district admin's sharing change
            moved = {spec.id: school_days.set_school_shared(spec, spec.parse_id(body["school"])[1], bool(body["shared"]))
                     for spec in specs if isinstance(spec, GeneratedDistrict) and spec.parse_id(body.get("school", ""))}
            return self.send_json(200, {"records": moved})
        if path == "/sandbox/pause":  # {"paused": true, "pause_end": "2027-08-16T00:00:00.000Z"}: Clever's summer pause
            served = {spec.id: school_days.set_district_paused(spec, bool(body.get("paused", True)),
                                                               body.get("pause_start"), body.get("pause_end"))
                      for spec in specs if isinstance(spec, GeneratedDistrict)}
            return self.send_json(200, {"districts": served})
        if path == "/sandbox/last-sync":  # {"last_sync": "2026-11-01T06:00:00.000Z"}: Clever's last sync of the SIS
            served = {spec.id: school_days.set_last_sync(spec, body.get("last_sync"))
                      for spec in specs if isinstance(spec, GeneratedDistrict)}
            return self.send_json(200, {"districts": served})
        if path == "/sandbox/demographics-shared":  # {"shared": false}: students come without demographic fields
            students = {spec.id: school_days.set_demographics_shared(spec, bool(body.get("shared", True)))
                        for spec in specs if isinstance(spec, GeneratedDistrict)}
            return self.send_json(200, {"students": students})
        if path == "/sandbox/new-school-year":  # rollover: new terms and sections, promotions, graduates, kindergarten
            return self.send_json(200, {"changes": {spec.id: school_days.start_school_year(spec)
                                                    for spec in specs if isinstance(spec, GeneratedDistrict)}})
        if path == "/sandbox/reissue-id":  # {"district": id, "student": id, "sis_id": "new or absent"}
            try:
                reissued = {spec.id: school_days.reissue_student(spec, body.get("student", ""), body.get("sis_id"))
                            for spec in specs if isinstance(spec, GeneratedDistrict) and spec.parse_id(body.get("student", ""))}
            except ValueError as error:
                return self.error(400, str(error))
            return self.send_json(200, {"new_ids": reissued})
        if path == "/sandbox/expire-events":
            for spec in specs:
                spec.events.expire()
            return self.send_json(200, {"ok": True})
        if path == "/sandbox/events-enabled":
            for spec in specs:
                spec.events.enabled = bool(body.get("enabled", True))
            return self.send_json(200, {"ok": True})
        return self.error(404, "not found")

    def do_GET(self) -> None:
        self.server.requests_served += 1
        url = urlsplit(self.path)
        self.server.log_request(url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == "/oauth/tokens":
            return self.oauth_tokens(query)
        if not url.path.startswith(API_PREFIX + "/"):
            return self.error(404, "not found")
        spec = self.authorize()
        if spec is None:
            return self.error(401, "invalid or revoked token")
        remaining, reset = self.server.limiter.take(spec.token)
        limit_headers = {"X-RateLimit-Limit": str(self.server.limiter.per_minute),
                         "X-RateLimit-Remaining": str(max(remaining, 0)), "X-RateLimit-Reset": str(reset)}
        fault = self.server.faults.next_fault()
        if fault == 429 or remaining < 0:
            reset_at = int(time.time()) + self.server.faults.reset_in if fault == 429 else reset
            return self.error(429, "rate limit exceeded", {**limit_headers, "X-RateLimit-Reset": str(reset_at)})
        if fault == "drop":  # the connection dies before any response
            self.close_connection = True
            return None
        if fault == "slow":  # a page that takes longer than the client waits
            time.sleep(self.server.faults.delay)
        elif fault == "truncate":  # the page is cut off half way
            self.truncate = True
        elif fault:
            return self.error(fault, "injected server error")
        parts = url.path[len(API_PREFIX) + 1:].strip("/").split("/")
        if parts == ["events"]:
            return self.event_page(spec, query, limit_headers)
        if len(parts) == 1 and parts[0] in COLLECTIONS:
            return self.collection(spec, parts[0], query, limit_headers)
        if len(parts) == 2 and parts[0] in COLLECTIONS:
            return self.one(spec, parts[0], parts[1], limit_headers)
        return self.error(404, "not found")

    def authorize(self) -> GeneratedDistrict | HandmadeDistrict | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        return self.server.data.by_token.get(header[len("Bearer "):].strip())

    def oauth_tokens(self, query: dict[str, str]) -> None:
        expected = base64.b64encode(f"{self.server.client_id}:{self.server.client_secret}".encode()).decode()
        if self.headers.get("Authorization", "") != f"Basic {expected}":
            return self.error(401, "invalid client credentials")
        if query.get("owner_type", "district") != "district":
            return self.send_json(200, {"data": []})
        tokens = [
            {"id": spec.token_record_id, "access_token": spec.token, "created": "2025-07-01T00:00:00.000Z",
             "owner": {"type": "district", "id": spec.id}, "scopes": ["read:district_admins", "read:school_admins",
                                                                       "read:students", "read:teachers", "read:user_id"]}
            for spec in self.server.data.specs
        ]
        self.send_json(200, {"data": tokens})

    def collection(self, spec: GeneratedDistrict | HandmadeDistrict, name: str, query: dict[str, str],
                   headers: dict[str, str]) -> None:
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return self.error(400, "limit must be an integer")
        if limit > MAX_LIMIT:
            return self.error(413, f"limit must be at most {MAX_LIMIT}")
        if limit < 1:
            return self.error(400, "limit must be positive")
        if "ending_before" in query:
            return self.error(400, "the sandbox pages forward only (starting_after)")
        role = query.get("role") if name == "users" else None
        if role and role != "contact" and role not in USER_ROLES:
            return self.error(400, f"unknown role {role!r}")
        try:
            payload = self.server.page_payload(spec, name, role or None, query.get("starting_after") or None, limit)
        except ValueError as exc:
            return self.error(400, str(exc))
        self.send_payload(200, payload, headers)

    def event_page(self, spec, query: dict[str, str], headers: dict[str, str]) -> None:
        if not spec.events.enabled:
            return self.error(403, "events are not enabled for this district")
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return self.error(400, "limit must be an integer")
        if not 1 <= limit <= MAX_LIMIT:
            return self.error(413 if limit > MAX_LIMIT else 400, f"limit must be between 1 and {MAX_LIMIT}")
        try:
            events, cursor = spec.events.page(query.get("starting_after") or None, limit)
        except LookupError as exc:
            return self.error(404, str(exc))
        links = [{"rel": "self", "uri": f"{API_PREFIX}/events?{urlencode(query)}"}]
        if cursor:
            links.append({"rel": "next", "uri": f"{API_PREFIX}/events?{urlencode({'limit': limit, 'starting_after': cursor})}"})
        self.send_json(200, {"data": [{"data": e, "uri": f"{API_PREFIX}/events/{e.get('id') if isinstance(e, dict) else ''}"}
                                      for e in events],
                             "links": links}, headers)

    def one(self, spec: GeneratedDistrict | HandmadeDistrict, name: str, object_id: str, headers: dict[str, str]) -> None:
        found = spec.find(COLLECTIONS[name], object_id)
        if found is None:
            return self.error(404, "not found")
        self.send_json(200, {"data": found, "uri": f"{API_PREFIX}/{name}/{object_id}"}, headers)


def start_sandbox(data: SandboxData, host: str = "127.0.0.1", port: int = 0, **options) -> SandboxServer:
    """Start the server in a background thread (port 0 picks a free port)."""
    server = SandboxServer((host, port), data, **options)
    threading.Thread(target=server.serve_forever, name="clever-sandbox", daemon=True).start()
    return server
