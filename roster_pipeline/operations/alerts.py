"""Tell people: a district's failed or blocked sync as one Slack-compatible message to a webhook.

The message says which district, why (a sentence of ids, counts and reason codes: never a
student's or teacher's values, since chat channels are outside the warehouse roles) and what
resolves it (a command or a UI action). Delivery is best effort: a bounded number of retries,
and a webhook that fails never fails a sync. The webhook URL is a credential (whoever has it can
post to the channel), so it is never logged, not even in an error.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

logger = logging.getLogger(__name__)
ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0


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
        return f"roster-pipeline: {district}: {headline}. {self.reason.rstrip('.')}. To resolve: {self.fix}"

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
               pause_seconds: float = 1.0) -> bool:
    """POST the alert; True once the receiver accepted it (2xx). Never raises.

    Retries on connection errors, timeouts, 429 and 5xx, `attempts` times in all; a 4xx other
    than 429 is the receiver refusing this message, so it is not retried.
    """
    with _secret_kept_out_of_logs(url.get_secret_value()):
        return _post(url, alert, attempts, timeout, pause_seconds)


def _post(url: SecretStr, alert: Alert, attempts: int, timeout: float, pause_seconds: float) -> bool:
    for attempt in range(1, attempts + 1):
        try:
            response = httpx.post(url.get_secret_value(), json=alert.payload(), timeout=timeout)
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
            time.sleep(pause_seconds * attempt)
    return False
