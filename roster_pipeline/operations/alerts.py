"""Tell people: a district's failed or blocked sync as one Slack-compatible message to a webhook.

The message says which district, why (a sentence of ids, counts and reason codes: never a
student's or teacher's values, since chat channels are outside the warehouse roles) and what
resolves it (a command or a UI action). Delivery is best effort: a bounded number of retries
inside one overall deadline, and a webhook that fails never fails a sync. The webhook URL is a
credential (whoever has it can post to the channel), so it is never logged, not even in an error.

District and school names come from Clever (an SIS value anyone at the district can type), so
the text is escaped for Slack's mrkdwn: a name cannot mention @channel or disguise a link.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from roster_pipeline.settings import webhook_address_problem

logger = logging.getLogger(__name__)
ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0  # each connect, write or read
DEADLINE_SECONDS = 15.0  # all attempts of one alert together, pauses included


def slack_escaped(text: str) -> str:
    """Slack's three control characters as the entities Slack documents: `<!channel>` and `<url|label>` become text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Alert:
    """One district's problem of the night."""

    district_id: str
    district_name: str | None
    problem: str  # "failed", "blocked", "stale" or "new school year"
    reason: str  # one sentence: ids, counts, reason codes
    fix: str  # the command or UI action that resolves it

    def text(self) -> str:
        district = f"{self.district_name} ({self.district_id})" if self.district_name else self.district_id
        headline = {"failed": "sync failed", "blocked": "publish blocked", "stale": "roster is stale"}.get(
            self.problem, self.problem)
        # Our own words carry no markup, so the whole text is escaped (names sit in `district` and `reason`).
        return slack_escaped(f"roster-pipeline: {district}: {headline}. {self.reason.rstrip('.')}. To resolve: {self.fix}")

    def payload(self) -> dict:
        """Slack's incoming-webhook body (`text`), with the facts as fields for other receivers."""
        return {"text": self.text(), "district_id": self.district_id, "district_name": self.district_name,
                "problem": self.problem, "reason": self.reason, "fix": self.fix}


class _WithoutSecret(logging.Filter):
    """Drops the log records of an HTTP library that quote the webhook's URL (httpx logs each request)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = urlsplit(secret).path or secret

    def filter(self, record: logging.LogRecord) -> bool:
        return self.secret not in record.getMessage()


@contextmanager
def _secret_kept_out_of_logs(url: str):
    hidden = _WithoutSecret(url)
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    for library in loggers:
        library.addFilter(hidden)
    try:
        yield
    finally:
        for library in loggers:
            library.removeFilter(hidden)


def post_alert(url: SecretStr, alert: Alert, *, attempts: int = ATTEMPTS, timeout: float = TIMEOUT_SECONDS,
               pause_seconds: float = 1.0, deadline: float = DEADLINE_SECONDS, allow_private: bool = False) -> bool:
    """POST the alert; True once the receiver accepted it (2xx). Never raises, and returns within `deadline` seconds.

    Retries on connection errors, timeouts, 429 and 5xx, `attempts` times in all; a 4xx other
    than 429 is the receiver refusing this message, so it is not retried. The webhook's host is
    resolved first, and an address settings.webhook_address_problem refuses is not posted to (a
    hostname can point anywhere, whatever the URL looked like when the settings were read).

    httpx's timeouts bound each read, so a receiver dripping a byte now and then would hold the
    caller for ever. The attempts run as one asyncio task cancelled at the deadline: cancellation
    stops the request in any phase (connect, headers, body) and closes its connection, with no
    thread left behind still talking to the receiver.
    """
    with _secret_kept_out_of_logs(url.get_secret_value()):
        work = _deliver(url, alert, attempts, timeout, pause_seconds, deadline, allow_private)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _run(work)
        result: list[bool] = []  # called from inside an event loop: the same, on a thread of its own
        thread = threading.Thread(target=lambda: result.append(_run(work)), name="alert", daemon=True)
        thread.start()
        thread.join()
        return bool(result and result[0])


def _run(work) -> bool:
    # A loop of our own, closed without waiting for its executor: a name lookup still pending at the
    # deadline (system resolvers have their own timeouts) finishes on its own instead of holding us.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        loop.close()


async def _deliver(url: SecretStr, alert: Alert, attempts: int, timeout: float, pause_seconds: float, deadline: float,
                   allow_private: bool) -> bool:
    try:
        async with asyncio.timeout(deadline):
            return await _post(url, alert, attempts, timeout, pause_seconds, allow_private)
    except TimeoutError:
        logger.warning(f"Alert for district {alert.district_id} not delivered within {deadline:g}s; given up.")
        return False


async def _refused_address(url: str, allow_private: bool) -> str | None:
    """Why the webhook's host must not be posted to (one sentence without the URL), or None."""
    parts = urlsplit(url)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except OSError:
        return None  # unresolvable: the request fails as a connection error, retried like one
    for *_, address in found:
        problem = webhook_address_problem(address[0], allow_private)
        if problem:
            return problem.replace(" points at ", "'s host resolves to ", 1)
    return None


async def _post(url: SecretStr, alert: Alert, attempts: int, timeout: float, pause_seconds: float,
                allow_private: bool) -> bool:
    problem = await _refused_address(url.get_secret_value(), allow_private)
    if problem:
        logger.warning(f"Alert for district {alert.district_id} not sent: {problem}")
        return False
    async with httpx.AsyncClient(timeout=timeout) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(url.get_secret_value(), json=alert.payload())
            except httpx.HTTPError as exc:  # the exception's text may hold the URL: only its kind is logged
                outcome, retry = type(exc).__name__, True
            else:
                if response.is_success:
                    return True
                outcome, retry = f"HTTP {response.status_code}", response.status_code == 429 or response.status_code >= 500
            logger.warning(f"Alert for district {alert.district_id} not delivered (attempt {attempt} of {attempts}: "
                           f"{outcome}).")
            if not retry:
                break
            if attempt < attempts:
                await asyncio.sleep(pause_seconds * attempt)
    return False
