"""HTTP access to the Clever API: paging, retries, rate limits and district token discovery.

Tokens are held as `SecretStr` and only revealed into the Authorization header; no message,
exception or log line built here contains one.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import orjson
from pydantic import SecretStr

from roster_pipeline.clever.settings import MAX_PAGE_SIZE, USER_AGENT
from roster_pipeline.settings import CleverSettings, ConfigError, validate_district_id

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}


class CleverAPIError(RuntimeError):
    """The Clever API refused a request or broke the paging protocol; the message says which.

    `status` is the HTTP status when there was one; `transient` says whether trying the whole
    run again later may succeed (rate limits, server errors, timeouts) or not (a refused token).
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class CleverClient:
    """One district's view of the Clever data API."""

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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"Clever page size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}.")
        self.base_url = base_url.rstrip("/")
        self.district_id = district_id
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.max_rate_limit_wait = max_rate_limit_wait
        self.sleep = sleep
        self.retries = 0  # how many requests were retried, for run metadata
        self.http = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {token.get_secret_value()}", "User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "CleverClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pages(self, collection: str, params: dict[str, str] | None = None) -> Iterator[list[dict]]:
        """Yield each page's objects (the inner `data`), following `next` until a page has none.

        A page may be empty and still carry `next`; a `next` whose cursor was already used
        means the API is looping, which is an error rather than a reason to stop quietly.
        """
        url = f"{self.base_url}/{collection}"
        query: dict[str, str] | None = {**(params or {}), "limit": str(self.page_size)}
        seen_cursors: set[str] = set()
        while True:
            body = self.get_json(url, query)
            yield [item["data"] if isinstance(item, dict) and "data" in item else item for item in body.get("data") or []]
            next_uri = next((link.get("uri") for link in body.get("links") or [] if link.get("rel") == "next"), None)
            if not next_uri:
                return
            cursor = (parse_qs(urlsplit(next_uri).query).get("starting_after") or [""])[0]
            if not cursor or cursor in seen_cursors:
                raise CleverAPIError(
                    f"Clever paging for {collection} did not advance (cursor {cursor!r} repeated); "
                    "stopping instead of looping.")
            seen_cursors.add(cursor)
            url, query = urljoin(self.base_url + "/", next_uri), None

    def get_json(self, url: str, params: dict[str, str] | None = None) -> dict:
        """GET with retries: 429 waits until X-RateLimit-Reset, 5xx/timeouts/bad JSON back off."""
        for attempt in range(1, self.max_attempts + 1):
            wait: float
            try:
                response = self.http.get(url, params=params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem, wait = f"{type(exc).__name__}", self._backoff(attempt)
            else:
                status = response.status_code
                if status == 200:
                    try:
                        body = orjson.loads(response.content)
                        if isinstance(body, dict):
                            return body
                        problem = "a page that is not a JSON object"
                    except orjson.JSONDecodeError:
                        problem = "a truncated or non-JSON page"
                    wait = self._backoff(attempt)
                elif status == 429:
                    problem, wait = "429 rate limited", self._rate_limit_wait(response, attempt)
                elif status in RETRY_STATUSES or status >= 500:
                    problem, wait = f"{status} server error", self._backoff(attempt)
                else:
                    raise self._refusal(response)
            if attempt == self.max_attempts:
                raise CleverAPIError(
                    f"Clever request {self._where(url)} failed after {attempt} attempts; last problem: {problem}.",
                    transient=True)
            self.retries += 1
            log.warning("Clever %s: %s, retrying in %.1fs (attempt %d/%d)",
                        self._where(url), problem, wait, attempt, self.max_attempts)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _where(self, url: str) -> str:
        path = urlsplit(url).path
        return f"{path} for district {self.district_id}" if self.district_id else path

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        return random.uniform(0.5, 1.0) * min(self.max_backoff, 0.5 * 2 ** (attempt - 1))

    def _rate_limit_wait(self, response: httpx.Response, attempt: int) -> float:
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            wait = float(reset) - time.time()
        except (TypeError, ValueError):
            return self._backoff(attempt)
        return min(max(wait, 0.5), self.max_rate_limit_wait)

    def _refusal(self, response: httpx.Response) -> CleverAPIError:
        where, status = self._where(str(response.url)), response.status_code
        if status in (401, 403):
            return CleverAPIError(
                f"Clever refused the district token ({status}) on {where}: the district may have "
                "de-authorized the application, or the token is wrong.", status=status)
        if status == 413:
            return CleverAPIError(f"Clever answered 413 on {where}: the page size is above Clever's limit.", status=status)
        if status == 404:
            return CleverAPIError(f"Clever answered 404 on {where}: not found or not shared.", status=status)
        return CleverAPIError(f"Clever answered {status} on {where}: {response.text[:200]}", status=status)


def discover_district_tokens(settings: CleverSettings, *, timeout: float = 30.0) -> dict[str, SecretStr]:
    """District id → token, from `CLEVER_DISTRICT_TOKENS` or the OAuth token endpoint."""
    if settings.district_tokens:
        return dict(settings.district_tokens)
    assert settings.client_id and settings.client_secret  # CleverSettings.from_env guarantees one or the other
    try:
        response = httpx.get(
            settings.oauth_tokens_url, params={"owner_type": "district"}, timeout=timeout,
            auth=(settings.client_id, settings.client_secret.get_secret_value()),
            headers={"User-Agent": USER_AGENT},
        )
    except httpx.HTTPError as exc:
        raise CleverAPIError(
            f"Could not reach CLEVER_OAUTH_TOKENS_URL ({settings.oauth_tokens_url}): {type(exc).__name__}.") from None
    if response.status_code in (401, 403):
        raise CleverAPIError(
            "The Clever token endpoint refused CLEVER_CLIENT_ID/CLEVER_CLIENT_SECRET "
            f"({response.status_code}); check the application's credentials.")
    if response.status_code != 200:
        raise CleverAPIError(f"The Clever token endpoint answered {response.status_code}.")
    tokens: dict[str, SecretStr] = {}
    for entry in orjson.loads(response.content).get("data") or []:
        owner = entry.get("owner") or {}
        if owner.get("type") != "district" or not entry.get("access_token"):
            continue
        tokens[validate_district_id(str(owner.get("id", "")), "Clever token endpoint")] = SecretStr(entry["access_token"])
    return tokens
