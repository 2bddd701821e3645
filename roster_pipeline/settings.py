"""Environment → typed settings, with one clear sentence for every bad value.

Every variable is listed in the contract's configuration table; a `.env` file in the working
directory may set them (python-dotenv, never overriding the real environment).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr

DEFAULT_API_BASE_URL = "https://api.clever.com/v3.1"
DEFAULT_OAUTH_TOKENS_URL = "https://clever.com/oauth/tokens"
CLEVER_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")  # every Clever object id: district, school, section, user


class RosterError(Exception):
    """Something the person running the pipeline can fix; the message is the one sentence they see."""


class ConfigError(RosterError, ValueError):
    """A setting is missing or malformed; the message is one sentence naming the variable."""


def load_dotenv() -> None:
    """Read `.env` in the working directory; a variable already set in the environment wins."""
    import dotenv

    dotenv.load_dotenv(Path.cwd() / ".env", override=False)


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the demo keeps its warehouse, Dagster home, dlt state and reports."""
    env = os.environ if env is None else env
    return Path(env.get("ROSTER_DATA_DIR") or Path.cwd() / "data").resolve()


PRIVATE_UMASK = 0o077  # files 0600, folders 0700: rosters are their owner's alone unless shared on purpose
GROUP_READABLE_FILE = 0o640  # what is written for a group of readers (the analysts' copy): see the README


def keep_files_private(env: Mapping[str, str] | None = None) -> None:
    """Everything this process writes from now on is readable by its owner only, and so is the data folder.

    The warehouse file, the analysts' copy, dlt's folders and the school pages all hold student
    records; a umask covers every writer at once (DuckDB, dlt, SQLite, our own files), where a
    chmod after each write would leave a window and miss the files a library creates. A data
    folder an older version created 0755 is narrowed here too.
    """
    os.umask(PRIVATE_UMASK)
    folder = data_dir(env)
    if folder.is_dir() and folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)


def validate_clever_id(value: str, what: str, source: str) -> str:
    """A Clever object id (`what`: "district", "school", ...) given by `source`, or one sentence naming both.

    Ids name partitions and folders and filter SQL, so anything else is refused before it is used.
    """
    if not CLEVER_ID_PATTERN.match(value):
        raise ConfigError(f"{source}: {value!r} is not a Clever {what} id (24 lower-case hex characters).")
    return value


def validate_district_id(district_id: str, source: str) -> str:
    """District ids name partitions and filter SQL, so they must look like Clever ids."""
    return validate_clever_id(district_id, "district", source)


def parse_district_tokens(raw: str) -> dict[str, SecretStr]:
    """`CLEVER_DISTRICT_TOKENS=district_id=token,district_id=token` → {district_id: token}."""
    tokens: dict[str, SecretStr] = {}
    for position, item in enumerate(part.strip() for part in raw.split(",") if part.strip()):
        district_id, sep, token = item.partition("=")
        if not sep or not token.strip():
            raise ConfigError(
                f"CLEVER_DISTRICT_TOKENS entry {position + 1} must look like district_id=token.")
        tokens[validate_district_id(district_id.strip(), "CLEVER_DISTRICT_TOKENS")] = SecretStr(token.strip())
    if not tokens:
        raise ConfigError("CLEVER_DISTRICT_TOKENS is set but lists no district_id=token pairs.")
    return tokens


def duckdb_file(url: str) -> Path:
    """The file a `duckdb:///` URL names, read as SQLAlchemy and dlt read it.

    `duckdb:////abs/warehouse.duckdb` is an absolute path; `duckdb:///warehouse.duckdb` is
    relative to the working directory (resolved now, so every process agrees on the file).
    """
    if not url.startswith("duckdb:///"):
        raise ConfigError("ROSTER_WAREHOUSE must name a DuckDB file like duckdb:////abs/path/warehouse.duckdb "
                          "(absolute) or duckdb:///warehouse.duckdb (relative to the working directory).")
    path = url[len("duckdb:///"):].split("?", 1)[0]
    if not path or path == ":memory:" or path.endswith("/"):
        raise ConfigError(f"ROSTER_WAREHOUSE {url!r} names no DuckDB file; the warehouse must be a file, "
                          "like duckdb:////abs/path/warehouse.duckdb.")
    file = (Path.cwd() / path).resolve() if not path.startswith("/") else Path(path)
    if file.is_dir():
        raise ConfigError(f"ROSTER_WAREHOUSE names {file}, which is a folder, not a DuckDB file.")
    for parent in file.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"ROSTER_WAREHOUSE names {file}, but {parent} is a file, not a folder.")
            break
    return file


def warehouse_url(env: Mapping[str, str] | None = None) -> str:
    """`ROSTER_WAREHOUSE`, checked and spelled canonically: duckdb:////abs/path or postgresql://user:pw@host:port/db."""
    env = os.environ if env is None else env
    url = env.get("ROSTER_WAREHOUSE") or f"duckdb:///{data_dir(env) / 'warehouse.duckdb'}"
    scheme = urlsplit(url).scheme
    if scheme == "duckdb":
        return f"duckdb:///{duckdb_file(url)}"
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- a port that is not a number raises here, not in the middle of a run
        except ValueError as exc:
            raise ConfigError(f"ROSTER_WAREHOUSE is not a valid Postgres URL ({exc}).") from None
        if not parts.hostname or not parts.path.strip("/"):
            raise ConfigError("ROSTER_WAREHOUSE must name a Postgres host and database, like postgresql://user:pw@host:5432/db.")
        return url
    raise ConfigError(f"ROSTER_WAREHOUSE has the unknown scheme {scheme!r}; use duckdb:/// or postgresql://.")


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 (an IPv6 scope ignored) or localhost: this machine, where plain http stays on it."""
    host = (host or "").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    """An https URL; plain http only to this machine (the sandbox), as it would carry tokens and secrets in clear."""
    value = (env.get(name) or default).rstrip("/")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- a port that is not a number raises here, not at the first request
    except ValueError:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(f"{name} must use https (plain http is only allowed to localhost), got {value!r}.")
    return value


def clever_max_objects_per_collection(env: Mapping[str, str] | None = None) -> int:
    """CLEVER_MAX_OBJECTS_PER_COLLECTION: a collection paging past this many objects is an error (default 5,000,000).

    A server handing out fresh cursors forever would otherwise be paged all night; the largest
    districts hold about a million students.
    """
    env = os.environ if env is None else env
    raw = (env.get("CLEVER_MAX_OBJECTS_PER_COLLECTION") or "5000000").strip().replace("_", "")
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"CLEVER_MAX_OBJECTS_PER_COLLECTION must be a whole number of objects, got {raw!r}.")
    return int(raw)


@dataclass(frozen=True)
class CleverSettings:
    """Where the Clever API is and how to find district tokens."""

    api_base_url: str
    oauth_tokens_url: str
    client_id: str | None
    client_secret: SecretStr | None
    district_tokens: dict[str, SecretStr] | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "CleverSettings":
        env = os.environ if env is None else env
        tokens = env.get("CLEVER_DISTRICT_TOKENS")
        client_id, client_secret = env.get("CLEVER_CLIENT_ID"), env.get("CLEVER_CLIENT_SECRET")
        if not tokens and not (client_id and client_secret):
            raise ConfigError(
                "Set CLEVER_DISTRICT_TOKENS, or CLEVER_CLIENT_ID and CLEVER_CLIENT_SECRET for token discovery.")
        return cls(
            api_base_url=_url(env, "CLEVER_API_BASE_URL", DEFAULT_API_BASE_URL),
            oauth_tokens_url=_url(env, "CLEVER_OAUTH_TOKENS_URL", DEFAULT_OAUTH_TOKENS_URL),
            client_id=client_id or None,
            client_secret=SecretStr(client_secret) if client_secret else None,
            district_tokens=parse_district_tokens(tokens) if tokens else None,
        )


def sync_timezone(env: Mapping[str, str] | None = None):
    """ROSTER_SYNC_TIMEZONE as a ZoneInfo (default America/Los_Angeles): the nightly schedule's zone, and
    the one the school pages give times in (Clever's district object carries no time zone)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    env = os.environ if env is None else env
    name = env.get("ROSTER_SYNC_TIMEZONE") or "America/Los_Angeles"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"ROSTER_SYNC_TIMEZONE {name!r} is not an IANA time zone (e.g. America/Los_Angeles).") from None


@dataclass(frozen=True)
class FreshnessSettings:
    """When the nightly refresh runs and how often the sensors look for districts and events."""

    sync_cron: str
    sync_timezone: str
    discovery_interval_seconds: int
    events_interval_seconds: int
    batch_size: int = 25

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "FreshnessSettings":
        from croniter import croniter  # what Dagster's schedules parse cron with

        env = os.environ if env is None else env
        cron = env.get("ROSTER_SYNC_CRON") or "0 0 * * *"
        # Dagster takes five fields (minute resolution), as croniter expands them.
        if not croniter.is_valid(cron) or len(croniter.expand(cron)[0]) != 5:
            raise ConfigError(f"ROSTER_SYNC_CRON {cron!r} is not a valid cron expression (e.g. \"0 0 * * *\").")
        timezone = sync_timezone(env).key
        intervals = {}
        for name, default in (("ROSTER_DISCOVERY_INTERVAL_SECONDS", 300), ("ROSTER_EVENTS_INTERVAL_SECONDS", 300)):
            raw = env.get(name) or str(default)
            if not raw.isdigit() or int(raw) < 30:
                raise ConfigError(f"{name} must be a whole number of seconds, at least 30, got {raw!r}.")
            intervals[name] = int(raw)
        raw = env.get("ROSTER_SYNC_BATCH_SIZE") or "25"
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"ROSTER_SYNC_BATCH_SIZE must be a whole number of districts per batch run, at least 1, got {raw!r}.")
        return cls(cron, timezone, intervals["ROSTER_DISCOVERY_INTERVAL_SECONDS"], intervals["ROSTER_EVENTS_INTERVAL_SECONDS"],
                   int(raw))


@dataclass(frozen=True)
class MassChangeSettings:
    """The publish guard: block when a table of a district changes by more than `share` and `min_rows`."""

    share: float
    min_rows: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "MassChangeSettings":
        env = os.environ if env is None else env
        raw_share = env.get("ROSTER_MASS_CHANGE_SHARE") or "0.2"
        raw_rows = env.get("ROSTER_MASS_CHANGE_MIN_ROWS") or "50"
        try:
            share = float(raw_share)
        except ValueError:
            share = -1.0
        if not 0 < share <= 10:
            raise ConfigError(f"ROSTER_MASS_CHANGE_SHARE must be a share like 0.2 (20 %), got {raw_share!r}.")
        if not raw_rows.isdigit():
            raise ConfigError(f"ROSTER_MASS_CHANGE_MIN_ROWS must be a whole number of rows, got {raw_rows!r}.")
        return cls(share, int(raw_rows))


def history_retention_days(env: Mapping[str, str] | None = None) -> int | None:
    """ROSTER_HISTORY_RETENTION_DAYS: keep replaced versions this many days (unset: keep everything)."""
    env = os.environ if env is None else env
    raw = (env.get("ROSTER_HISTORY_RETENTION_DAYS") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"ROSTER_HISTORY_RETENTION_DAYS must be a whole number of days (1 or more), got {raw!r}.")
    return int(raw)


def sis_stale_days(env: Mapping[str, str] | None = None) -> int:
    """ROSTER_SIS_STALE_DAYS: Clever's last sync of a district's SIS older than this many days is flagged (default 7).

    Clever syncs each district's SIS nightly; a week without one means the district's changes stop
    reaching the roster while every sync of ours still succeeds.
    """
    env = os.environ if env is None else env
    raw = (env.get("ROSTER_SIS_STALE_DAYS") or "7").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"ROSTER_SIS_STALE_DAYS must be a whole number of days (1 or more), got {raw!r}.")
    return int(raw)


WEBHOOK = "ROSTER_ALERT_WEBHOOK_URL"
LINK_LOCAL_NETWORKS = [ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10")]  # cloud metadata lives here
PRIVATE_NETWORKS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]


def webhook_address_problem(address: str, allow_private: bool) -> str | None:
    """Why alerts must not go to this IP address (one sentence naming the variable, never the URL), or None.

    The webhook is the one place we send data to an address an operator typed: a link-local address
    reaches a cloud's metadata service (instance credentials), a private one the internal network.
    Loopback stays allowed (a local relay, the tests' receivers).
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0) names no other address
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:169.254.169.254 is 169.254.169.254
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None
    if any(ip in n for n in LINK_LOCAL_NETWORKS):
        return f"{WEBHOOK} points at a link-local address (169.254.0.0/16 or fe80::/10, where cloud metadata services " \
               "answer), which alerts are never sent to (the URL is not shown: it is a secret)."
    if any(ip in n for n in PRIVATE_NETWORKS):
        if allow_private:
            return None
        return f"{WEBHOOK} points at a private network address; set ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE=1 if the " \
               "receiver is meant to be on your network (the URL is not shown: it is a secret)."
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{WEBHOOK} points at an address that is no single host (unspecified, multicast or reserved); " \
               "the URL is not shown: it is a secret."
    return None


def check_webhook_url(url: str, allow_private: bool) -> None:
    """https (plain http only to loopback), and no literal address `webhook_address_problem` refuses.

    A hostname is checked again where it is resolved, at each send (operations/alerts.py).
    """
    try:
        parts = urlsplit(url)
        scheme, host, _ = parts.scheme, parts.hostname, parts.port  # a port that is not a number raises here
    except ValueError:
        scheme = host = None
    # The value is a secret (a Slack webhook URL is its own credential): never repeated.
    if scheme not in ("http", "https") or not host:
        raise ConfigError(f"{WEBHOOK} must be an https URL (its value is not shown: it is a secret).")
    try:
        problem = webhook_address_problem(host, allow_private)
    except ValueError:  # a hostname, not an address
        problem = None
    if problem:
        raise ConfigError(problem)
    if scheme == "http" and not is_loopback_host(host):
        raise ConfigError(f"{WEBHOOK} must be an https URL; plain http is only for a receiver on this machine "
                          "(127.0.0.1, ::1, localhost); the value is not shown: it is a secret.")


def _allow_private(env: Mapping[str, str]) -> bool:
    raw = (env.get("ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE") or "0").strip().lower()
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE must be 1 or 0, got {raw!r}.")
    return raw in ("1", "true", "yes")


@dataclass(frozen=True)
class OperationsSettings:
    """Who is told when a district fails, when a district counts as stale, and when a school year starts."""

    alert_webhook_url: SecretStr | None
    freshness_hours: float = 26.0
    school_year_start: tuple[int, int] = (7, 1)  # (month, day)
    alert_webhook_allow_private: bool = False  # ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE=1: a receiver on a private network

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "OperationsSettings":
        from datetime import date

        env = os.environ if env is None else env
        url = (env.get("ROSTER_ALERT_WEBHOOK_URL") or "").strip()
        allow_private = _allow_private(env)
        if url:
            check_webhook_url(url, allow_private)
        raw_hours = (env.get("ROSTER_FRESHNESS_HOURS") or "26").strip()
        try:
            hours = float(raw_hours)
        except ValueError:
            hours = 0.0
        if not 0 < hours <= 24 * 366:
            raise ConfigError(f"ROSTER_FRESHNESS_HOURS must be a number of hours like 26, got {raw_hours!r}.")
        raw_start = (env.get("ROSTER_SCHOOL_YEAR_START") or "07-01").strip()
        match = re.fullmatch(r"(\d\d)-(\d\d)", raw_start)
        try:
            start = date(2001, int(match[1]), int(match[2])) if match else None  # 2001: no 29 February
        except ValueError:
            start = None
        if start is None:
            raise ConfigError(f"ROSTER_SCHOOL_YEAR_START must be a month and day like 07-01, got {raw_start!r}.")
        return cls(SecretStr(url) if url else None, hours, (start.month, start.day), allow_private)


def clever_timeout() -> float:
    """CLEVER_TIMEOUT_SECONDS: the whole time one Clever request may take (default 60)."""
    raw = os.environ.get("CLEVER_TIMEOUT_SECONDS") or "60"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigError(f"CLEVER_TIMEOUT_SECONDS must be a positive number of seconds, got {raw!r}.")
    return value
