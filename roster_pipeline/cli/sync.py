"""`roster-pipeline sync`: a full refresh (or Clever events since the cursor) of each district, as Dagster runs.

Every sync run goes through the Dagster instance at `DAGSTER_HOME` (a local one under the data
directory when unset), so runs from the command line show up in the UI like scheduled ones.
Dagster is imported inside `sync`, so `--help` and a mistake caught early stay fast.

Each district's line says what kind of sync its run did and why ("incremental, 181 events",
"full: no cursor"), as its run's tags do. A failed or blocked run is a designed outcome, not a
crash: the terminal gets the district, its problems one sentence each, and the fix once
(`paragraph`); Dagster's error records, stack traces included, stay in the run's event log (the
UI), and only its warnings reach the terminal.
"""

from __future__ import annotations

import logging
import sys

from roster_pipeline.cli.dagster_home import ensure_dagster_home
from roster_pipeline.cli.progress import ProgressDisplay
from roster_pipeline.operations.terminal import printable
from roster_pipeline.settings import ConfigError, data_dir, validate_district_id, warehouse_url


def sync(district_ids: list[str] | None = None, *, incremental: bool = False, trigger: str = "manual",
         accept_mass_change: bool = False, out=None) -> int:
    """Sync each district (all when none are named); 0 only if every run succeeds.

    Without `incremental` a full refresh; with it, Clever events since each district's cursor
    (falling back to a full refresh, with the reason logged, when events cannot be used).
    """
    out = out or sys.stdout
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.clever.client import discover_district_tokens
    from roster_pipeline.clever.source import PROGRESS_LOGGER
    from roster_pipeline.definitions import build_definitions
    from roster_pipeline.defs.automation.batch import sync_in_process
    from roster_pipeline.defs.automation.jobs import approval_tags, run_tags
    from roster_pipeline.defs.constants import (
        DISTRICT_NAME_TAG,
        DISTRICT_PARTITIONS_NAME,
        DISTRICT_SYNC_JOB,
        SKIP_ANALYST_COPY_TAG,
    )
    from roster_pipeline.publishing.publish import published_district_names
    from roster_pipeline.settings import CleverSettings
    from roster_pipeline.warehouse.connection import Warehouse

    defs = build_definitions()
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    warehouse.check_ready()  # a locked file or a refused login stops us here
    settings = CleverSettings.from_env()
    tokens = discover_district_tokens(settings)
    known = sorted(tokens)
    if district_ids:
        for district_id in district_ids:
            validate_district_id(district_id, "--district")
        missing = sorted(set(district_ids) - set(known))
        if missing:
            raise ConfigError(f"--district {', '.join(missing)} has no Clever token (not authorized or not listed).")
        targets = list(dict.fromkeys(district_ids))
    else:
        targets = known
    if not targets:
        print("No districts have authorized the application yet; nothing to sync.", file=out)
        return 0
    check_api_address(settings.api_base_url, targets[0], tokens[targets[0]])
    names = published_district_names(warehouse, targets)  # runs say the name from the start when we know it
    failures = 0
    # The instance is opened before the job is resolved and closed afterwards: Dagster binds the
    # definitions to the instance that is current when they are resolved.
    with ProgressDisplay(out).attached(PROGRESS_LOGGER), DagsterInstance.get() as instance:
        new = [d for d in targets if not instance.has_dynamic_partition(DISTRICT_PARTITIONS_NAME, d)]
        if new:
            instance.add_dynamic_partitions(DISTRICT_PARTITIONS_NAME, new)
        job = defs.resolve_job_def(DISTRICT_SYNC_JOB).with_logger_defs({"console": terminal_logger()})
        # Several districts: the analysts' DuckDB file (a copy of every district) is refreshed once,
        # at the end, as a batch run does, not after each district.
        batch = {SKIP_ANALYST_COPY_TAG: "true"} if len(targets) > 1 and warehouse.kind == "duckdb" else {}
        for district_id in targets:
            outcome = sync_in_process(
                job, instance, warehouse, district_id, incremental=incremental,
                tags={**run_tags(district_id, trigger), **(approval_tags() if accept_mass_change else {}),
                      **({DISTRICT_NAME_TAG: names[district_id]} if district_id in names else {}), **batch})
            for line in paragraph(outcome.line(), outcome.problems):
                print(printable(line), file=out)  # the district's name (and schools' in problems) is Clever's
            failures += not outcome.success
        if batch and failures < len(targets):
            from roster_pipeline.modeling.project import sql_project
            from roster_pipeline.warehouse.analyst_copy import refresh_analyst_file

            refresh_analyst_file(warehouse, sql_project().access_classes)
    print(f"{len(targets) - failures} of {len(targets)} districts synced.", file=out)
    return 1 if failures else 0


def check_api_address(base_url: str, district_id: str, token) -> None:
    """Stop with one sentence when CLEVER_API_BASE_URL is not the API (another version, no version):
    every district's run would fail the same way, each blaming its district.

    One request, the `districts` collection every district has; only its 404 stops the command
    (a refused token or an outage is the district's run's to report).
    """
    from roster_pipeline.clever.client import CleverAPIError, CleverClient

    with CleverClient(base_url, token, district_id=district_id, page_size=1, max_attempts=1, timeout=30.0) as client:
        try:
            client.get_json(f"{client.base_url}/districts", {"limit": "1"})
        except CleverAPIError as exc:
            if exc.status == 404:
                raise


class _BelowErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def terminal_logger():
    """Dagster's console logger without its error records: a failed step's record carries its stack
    trace (twice, with the run's failure), and `sync` prints the failure itself, in sentences."""
    from dagster import logger
    from dagster._loggers import colored_console_logger

    @logger(colored_console_logger.config_schema, description="The console logger, warnings and below.")
    def console(init_context) -> logging.Logger:
        console_logger = colored_console_logger.logger_fn(init_context)
        for handler in console_logger.handlers:
            handler.addFilter(_BelowErrors())
        return console_logger

    return console


FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "  # a step that refused on purpose (Dagster's Failure)


def paragraph(line: str, problems: list[str]) -> list[str]:
    """A district's outcome line and its problems, each sentence once.

    A blocked publish reports each failed check, then the refusing step repeats the checks'
    descriptions; those are cut from the step's sentence, and the fix the checks all end with
    (their common last sentence) is said once, at the end.
    """
    problems = [p.replace(FAILURE_PREFIX, "", 1) for p in problems]
    checks = [p.split(" failed: ", 1)[1] for p in problems if p.startswith("check ") and " failed: " in p]
    fix = _common_last_sentence(checks)
    lines = []
    for problem in problems:
        if not problem.startswith("check "):
            for check in checks:
                problem = problem.replace(check, "")
            problem = problem.rstrip("; ").replace(". ;", ".").replace(".;", ".")
        if fix:
            problem = problem.removesuffix(fix).rstrip()
        lines.append(f"  {problem}")
    lines.sort(key=lambda text: text.startswith("  check "))  # what happened first, then why
    return [line, *lines, *([f"  {fix}"] if fix else [])]


def _common_last_sentence(texts: list[str]) -> str:
    """The sentence every text ends with ("If the change is real, approve it with ..."), or ""."""
    if len(texts) < 1:
        return ""
    last = texts[0].rsplit(". ", 1)[-1]
    return last if len(last) > 20 and last != texts[0] and all(t.endswith(". " + last) for t in texts) else ""
