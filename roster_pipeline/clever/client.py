"""HTTP access to the Clever API: paging, retries, rate limits and district token discovery.

Tokens are held as `SecretStr` and only revealed into the Authorization header of a request to
the configured API (scheme, host, port and path prefix); no message, exception or log line built
here contains one. Whatever the server does, a request ends within its deadline and its size cap,
and a collection ends within its object cap with cursors that only move forward.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from typing import Callable, Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import orjson
from pydantic import SecretStr

from roster_pipeline.clever.settings import MAX_PAGE_SIZE, USER_AGENT
from roster_pipeline.settings import (
    CLEVER_ID_PATTERN,
    DEFAULT_OAUTH_TOKENS_URL,
    CleverSettings,
    ConfigError,
    clever_max_objects_per_collection,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_PAGE_BYTES = 64 * 2**20  # a 10,000-object page of users is about 15 MiB
CONNECT_ATTEMPTS = 3  # a refused connection or unknown host is a wrong URL or an outage: no long backoff


class CleverAPIError(RuntimeError):
    """The Clever API refused a request or broke the paging protocol; the message says which.

    `status` is the HTTP status when there was one; `transient` says whether trying the whole
    run again later may succeed (rate limits, server errors, timeouts) or not (a refused token).
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class _Deadline:
    """Shuts a request's socket when its time is up, in whatever phase the request is.

    httpx's timeouts bound each socket read, so a server dripping a byte a second (headers or
    body) never trips one. The socket is learned through httpcore's `trace` extension as the
    connection opens (the client keeps no idle connections, so each request opens its own).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds, self.expired, self.sock = seconds, False, None
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self.started = time.monotonic()
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()

    def check(self) -> None:
        if time.monotonic() - self.started > self.seconds:
            self._expire()

    def trace(self, event: str, info: dict) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            with self.lock:
                self.sock = info["return_value"].get_extra_info("socket")
                if self.expired:
                    self._shut()

    def _expire(self) -> None:
        with self.lock:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self.sock is not None:
            try:  # the plain socket call: an SSLSocket's own shutdown would unwrap it under the reading thread
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class _PageTooLarge(Exception):
    """An answer above the client's size cap (raised while reading it)."""


class _Expired(Exception):
    """An answer not complete within the request's deadline."""


class CleverClient:
    """One district's view of the Clever data API.

    `timeout` (CLEVER_TIMEOUT_SECONDS) is the whole time one request may take, connect to last
    byte; `max_page_bytes` caps one answer; `max_objects` caps one collection (default
    CLEVER_MAX_OBJECTS_PER_COLLECTION).
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        district_id: str = "",
        page_size: int = MAX_PAGE_SIZE,
        timeout: float = 60.0,
        max_attempts: int = 8,
        max_backoff: float = 30.0,
        max_rate_limit_wait: float = 120.0,
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_objects: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"Clever page size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}.")
        self.base_url = base_url.rstrip("/")
        self.base = httpx.URL(self.base_url + "/")
        self.token = token
        self.district_id = district_id
        self.page_size = page_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.max_rate_limit_wait = max_rate_limit_wait
        self.max_page_bytes = max_page_bytes
        self.max_objects = clever_max_objects_per_collection() if max_objects is None else max_objects
        self.sleep = sleep
        self.retries = 0  # how many requests were retried, for run metadata
        # No idle connections: each request opens its own, so its deadline can shut that socket.
        self.http = httpx.Client(headers={"User-Agent": USER_AGENT}, limits=httpx.Limits(max_keepalive_connections=0))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "CleverClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def is_clever(self, url: httpx.URL) -> bool:
        """Whether `url` is under the configured API: same scheme, host, port and path prefix."""
        return ((url.scheme, url.host, url.port) == (self.base.scheme, self.base.host, self.base.port)
                and url.path.startswith(self.base.path) and not url.userinfo)

    def pages(self, collection: str, params: dict[str, str] | None = None,
              max_objects: int | None = None) -> Iterator[list[dict]]:
        """Yield each page's objects (the inner `data`), following `next` until a page has none.

        A page may be empty and still carry `next`. Clever pages in id order, so each cursor must
        be above the one before; a `next` elsewhere than the API, a cursor that does not advance,
        or more than `max_objects` objects (or pages for them) is an error, not a reason to go on.
        """
        max_objects = self.max_objects if max_objects is None else max_objects
        max_pages = 2 * (max_objects // self.page_size) + 10  # Share by Schools: pages may be empty
        url = httpx.URL(f"{self.base_url}/{collection}")
        query: dict[str, str] | None = {**(params or {}), "limit": str(self.page_size)}
        cursor = (params or {}).get("starting_after") or ""
        objects = 0
        for _ in range(max_pages):
            body = self.get_json(url, query)
            items = [item["data"] if isinstance(item, dict) and "data" in item else item
                     for item in body.get("data") or []]
            objects += len(items)
            if objects > max_objects:
                raise CleverAPIError(
                    f"Clever paging for {collection} passed {max_objects:,} objects, this collection's cap "
                    "(ten times what the district held at its last sync, at least 100,000; or "
                    "CLEVER_MAX_OBJECTS_PER_COLLECTION); stopping instead of paging without end.")
            yield items
            links = body.get("links") if isinstance(body.get("links"), list) else []
            next_uri = next((link.get("uri") for link in links if isinstance(link, dict) and link.get("rel") == "next"), None)
            if not next_uri:
                return
            try:
                url = httpx.URL(urljoin(self.base_url + "/", str(next_uri)))
                foreign = not self.is_clever(url)
            except (ValueError, httpx.InvalidURL):  # urljoin refuses some, httpx others
                foreign = True
            if foreign:
                raise CleverAPIError(
                    f"Clever paging for {collection} gave a next link outside {self.base_url}; stopping "
                    "without following it (the district token goes only to the configured API).")
            previous, cursor = cursor, (parse_qs(url.query.decode()).get("starting_after") or [""])[-1]
            if not cursor or cursor <= previous:
                raise CleverAPIError(
                    f"Clever paging for {collection} did not advance (cursor {cursor[:40]!r} is not after "
                    f"{previous[:40]!r}); stopping instead of looping.")
            query = None
        raise CleverAPIError(
            f"Clever paging for {collection} passed {max_pages:,} pages without an end "
            "(CLEVER_MAX_OBJECTS_PER_COLLECTION); stopping instead of paging without end.")

    def get_json(self, url: str | httpx.URL, params: dict[str, str] | None = None) -> dict:
        """GET with retries: 429 waits until X-RateLimit-Reset, 5xx/timeouts/bad JSON back off,
        refused connections are tried CONNECT_ATTEMPTS times."""
        url = httpx.URL(url)
        if not self.is_clever(url):
            raise CleverAPIError(f"Refusing to send the district token outside {self.base_url}.")
        connect_failures = 0
        for attempt in range(1, self.max_attempts + 1):
            wait: float
            try:
                status, headers, content = self._fetch(url, params)
            except _PageTooLarge:
                raise CleverAPIError(
                    f"Clever's answer on {self._where(url)} is larger than {self.max_page_bytes:,} bytes; "
                    "stopping instead of holding it in memory.") from None
            except httpx.ConnectError as exc:
                connect_failures += 1
                if connect_failures >= CONNECT_ATTEMPTS:
                    raise CleverAPIError(
                        f"Could not connect to Clever at {url.host}:{url.port or url.scheme} "
                        f"({type(exc).__name__}, {connect_failures} attempts); check CLEVER_API_BASE_URL.") from None
                problem, wait = type(exc).__name__, 0.5
            except _Expired:
                problem, wait = f"no complete answer within {self.timeout:g}s", self._backoff(attempt)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem, wait = f"{type(exc).__name__}", self._backoff(attempt)
            else:
                if status == 200:
                    try:
                        body = orjson.loads(content)
                        if isinstance(body, dict):
                            return body
                        problem = "a page that is not a JSON object"
                    except orjson.JSONDecodeError:
                        problem = "a truncated or non-JSON page"
                    wait = self._backoff(attempt)
                elif status == 429:
                    problem, wait = "429 rate limited", self._rate_limit_wait(headers, attempt)
                elif status in RETRY_STATUSES or status >= 500:
                    problem, wait = f"{status} server error", self._backoff(attempt)
                else:
                    raise self._refusal(url, status, content)
            if attempt == self.max_attempts:
                raise CleverAPIError(
                    f"Clever request {self._where(url)} failed after {attempt} attempts; last problem: {problem}.",
                    transient=True)
            self.retries += 1
            log.warning("Clever %s: %s, retrying in %.1fs (attempt %d/%d)",
                        self._where(url), problem, wait, attempt, self.max_attempts)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _fetch(self, url: httpx.URL, params: dict[str, str] | None) -> tuple[int, httpx.Headers, bytes]:
        """One GET read whole, within the deadline (_Expired) and the size cap (_PageTooLarge)."""
        return _get_whole(self.http, url, params=params, timeout=self.timeout, max_bytes=self.max_page_bytes,
                          headers={"Authorization": f"Bearer {self.token.get_secret_value()}"})

    def _where(self, url: str | httpx.URL) -> str:
        path = urlsplit(str(url)).path
        return f"{path} for district {self.district_id}" if self.district_id else path

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        return random.uniform(0.5, 1.0) * min(self.max_backoff, 0.5 * 2 ** (attempt - 1))

    def _rate_limit_wait(self, headers: httpx.Headers, attempt: int) -> float:
        reset = headers.get("X-RateLimit-Reset")
        try:
            wait = float(reset) - time.time()
        except (TypeError, ValueError):
            return self._backoff(attempt)
        return min(max(wait, 0.5), self.max_rate_limit_wait)

    def _refusal(self, url: httpx.URL, status: int, content: bytes) -> CleverAPIError:
        where = self._where(url)
        if status in (401, 403):
            return CleverAPIError(
                f"Clever refused the district token ({status}) on {where}: the district may have "
                "de-authorized the application, or the token is wrong.", status=status)
        if status == 413:
            return CleverAPIError(f"Clever answered 413 on {where}: the page size is above Clever's limit.", status=status)
        if status == 404 and "/" not in url.path.removeprefix(self.base.path).strip("/"):
            # A collection (`schools`, not `schools/{id}`) exists for every district Clever serves: its
            # 404 is the API's address, most often another version than the one this client speaks.
            return CleverAPIError(
                f"Clever answered 404 on {urlsplit(str(url)).path}, a collection every district has: "
                f"check CLEVER_API_BASE_URL (it should end in /v3.1; it is {self.base_url}).", status=status)
        if status == 404:
            return CleverAPIError(f"Clever answered 404 on {where}: not found or not shared.", status=status)
        text = content[:200].decode("utf-8", "replace").replace(self.token.get_secret_value(), "***")
        return CleverAPIError(f"Clever answered {status} on {where}: {text}", status=status)


def _get_whole(http: httpx.Client, url, *, params: dict[str, str] | None, timeout: float, max_bytes: int,
               headers: dict[str, str] | None = None, auth=None) -> tuple[int, httpx.Headers, bytes]:
    """One GET read whole, within `timeout` for all of it (_Expired) and `max_bytes` (_PageTooLarge).

    `http` must keep no idle connections, so that the request's deadline can shut its own socket.
    """
    deadline = _Deadline(timeout)
    request = http.build_request("GET", url, params=params, headers=headers, timeout=timeout,
                                 extensions={"trace": deadline.trace})
    try:
        with deadline:
            response = http.send(request, auth=auth, stream=True)
            try:
                declared = response.headers.get("Content-Length") or "0"
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _PageTooLarge
                content = bytearray()
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > max_bytes:
                        raise _PageTooLarge
                    deadline.check()
            finally:
                response.close()
    except httpx.TransportError:
        if deadline.expired:
            raise _Expired from None
        raise
    if deadline.expired:
        raise _Expired
    return response.status_code, response.headers, bytes(content)


def discover_district_tokens(settings: CleverSettings, *, timeout: float = 30.0) -> dict[str, SecretStr]:
    """District id → token, from `CLEVER_DISTRICT_TOKENS` or the OAuth token endpoint.

    A malformed entry of the endpoint's list is skipped with a warning naming its position (one
    bad entry must not cost every district its night); an answer that is no such list is an error.
    """
    if settings.district_tokens:
        return dict(settings.district_tokens)
    assert settings.client_id and settings.client_secret  # CleverSettings.from_env guarantees one or the other
    where = f"CLEVER_OAUTH_TOKENS_URL ({settings.oauth_tokens_url})"
    try:
        with httpx.Client(headers={"User-Agent": USER_AGENT}, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            status, _, content = _get_whole(
                http, settings.oauth_tokens_url, params={"owner_type": "district"}, timeout=timeout,
                max_bytes=MAX_PAGE_BYTES, auth=(settings.client_id, settings.client_secret.get_secret_value()))
    except _Expired:
        raise CleverAPIError(f"{where} gave no complete answer within {timeout:g}s.") from None
    except _PageTooLarge:
        raise CleverAPIError(f"{where} answered more than {MAX_PAGE_BYTES:,} bytes; that is no token list.") from None
    except httpx.HTTPError as exc:
        raise CleverAPIError(f"Could not reach {where}: {type(exc).__name__}.") from None
    if status in (401, 403):
        raise CleverAPIError(
            "The Clever token endpoint refused CLEVER_CLIENT_ID/CLEVER_CLIENT_SECRET "
            f"({status}); check the application's credentials.")
    if status == 404:
        raise CleverAPIError(f"The Clever token endpoint answered 404: check CLEVER_OAUTH_TOKENS_URL (it is "
                             f"{settings.oauth_tokens_url}; Clever's is {DEFAULT_OAUTH_TOKENS_URL}).")
    if status != 200:
        raise CleverAPIError(f"The Clever token endpoint ({where}) answered {status}.")
    try:
        entries = orjson.loads(content).get("data")
    except (orjson.JSONDecodeError, AttributeError):
        entries = None
    if not isinstance(entries, list):
        raise CleverAPIError(
            "The Clever token endpoint (CLEVER_OAUTH_TOKENS_URL) answered 200 without a JSON list of tokens "
            "(`data`); check the URL.")
    tokens: dict[str, SecretStr] = {}
    for position, entry in enumerate(entries, start=1):
        owner = entry.get("owner") if isinstance(entry, dict) else None
        if not isinstance(owner, dict) or owner.get("type") != "district":
            if not (isinstance(owner, dict) and isinstance(owner.get("type"), str)):
                log.warning("Clever token endpoint: entry %d names no owner; skipped.", position)
            continue  # a token of a school or user is not a district's
        district_id, token = owner.get("id"), entry.get("access_token")
        if not isinstance(district_id, str) or not CLEVER_ID_PATTERN.match(district_id):
            log.warning("Clever token endpoint: entry %d has an owner id that is not a Clever district id; skipped.",
                        position)
        elif not isinstance(token, str) or not token.strip():
            log.warning("Clever token endpoint: entry %d (district %s) has no access_token; skipped.",
                        position, district_id)
        else:
            tokens[district_id] = SecretStr(token)
    return tokens
