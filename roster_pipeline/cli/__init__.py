"""`roster-pipeline`: sync districts, serve the sandbox, or run the demo.

One module per command group: `sync.py` (with the terminal's `progress.py` and the Dagster
instance of `dagster_home.py`), `maintenance.py` (forget, grants, report, dictionary) and
`sandbox.py` (sandbox, demo). This module holds the argument parser and the one rule every
command shares: a mistake the user can fix ends in one sentence on stderr and exit code 2, never
a traceback. Only the commands that need Dagster import it, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import signal
import sys

from roster_pipeline.clever.client import CleverAPIError
from roster_pipeline.cli import maintenance, operations, sandbox, sync
from roster_pipeline.settings import RosterError, keep_files_private, load_dotenv


def interruptible() -> None:
    """Undo an ignored SIGINT inherited from a background job (`roster-pipeline sync &`, some schedulers).

    Dagster gives SIGTERM the SIGINT handler; with SIGINT ignored, every process a run starts
    (its compute-log tails) ignores SIGTERM too and outlives its stop, and each run waited about
    a minute for them at its end.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """`(default: ...)` after an option's help, unless there is nothing to show (no value, a flag off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default is None or action.default is False else super()._get_help_string(action)


def main(argv: list[str] | None = None) -> int:
    """The `roster-pipeline` command: parse the arguments, run one command, return its exit code."""
    load_dotenv()
    interruptible()
    keep_files_private()  # before any command writes: warehouse, dlt folders, Dagster home, pages
    parser = argparse.ArgumentParser(prog="roster-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p_sync = commands.add_parser("sync", help="discover districts and fully refresh each one")
    p_sync.add_argument("--district", action="append", dest="districts", metavar="ID",
                        help="sync only this district (repeatable)")
    p_sync.add_argument("--accept-mass-change", action="store_true",
                        help="approve a change above the mass-change guard for the districts synced now")
    p_sync.add_argument("--incremental", action="store_true",
                        help="apply Clever events since each district's cursor instead of a full refresh")

    p_status = commands.add_parser("status", help="one line per district: publish, last run, blocked, cursor, pause")
    p_status.add_argument("--json", action="store_true", help="the same as JSON, for scripts")
    p_status.add_argument("--district", metavar="ID", help="only this district, with every sentence of its block")

    p_approve = commands.add_parser("approve", help="approve blocked mass changes (after showing them) and publish")
    p_approve.add_argument("--district", action="append", dest="districts", metavar="ID",
                           help="approve this district's blocked publish (repeatable)")
    p_approve.add_argument("--all-blocked", action="store_true", help="approve every blocked district")
    p_approve.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")

    p_forget = commands.add_parser("forget", help="remove every trace of a district (after de-authorization)")
    p_forget.add_argument("--district", required=True, metavar="ID", help="the district's Clever id")
    p_forget.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")

    commands.add_parser("grants", help="create the Postgres reader roles and grant them the roster tables")

    p_report = commands.add_parser("report", help="regenerate a district's school confirmation pages (HTML and CSV)")
    p_report.add_argument("--district", required=True, metavar="ID", help="the district's Clever id")
    p_report.add_argument("--school", metavar="ID", help="only this school's page")

    commands.add_parser("dictionary", help="regenerate docs/data_dictionary.md from the yml of dbt_like_sql/")

    p_sandbox = commands.add_parser("sandbox", help="serve a Clever-compatible API with synthetic districts")
    p_sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p_sandbox.add_argument("--port", type=int, default=8765, help="port to listen on")
    p_sandbox.add_argument("--districts", type=int, default=3, help="how many synthetic districts")
    p_sandbox.add_argument("--students", type=int, default=5000, help="students in the largest district")
    p_sandbox.add_argument("--equal-sizes", action="store_true", help="every district has --students students")
    p_sandbox.add_argument("--seed", type=int, default=42, help="the same seed gives the same districts")
    p_sandbox.add_argument("--client-id", default="sandbox-client", help="the application's id it accepts")
    p_sandbox.add_argument("--client-secret", default="sandbox-secret", help="the application's secret it accepts")
    p_sandbox.add_argument("--requests-per-minute", type=int, default=1200, help="per-token rate limit")
    p_sandbox.add_argument("--preserialize", action="store_true",
                           help="build every page once before serving (benchmarks: measure the client, not the server)")
    p_sandbox.add_argument("--mutate-every", type=float, default=0.0, metavar="SECONDS",
                           help="advance one simulated school day (with Clever events) every SECONDS; 0: never")
    p_sandbox.add_argument("--mutate-share", type=float, default=0.01, help="share of records a day changes")
    p_sandbox.add_argument("--fault-rate", type=float, default=0.0,
                           help="share of data requests answered 429 or 503 (a fault drill; 0: none)")

    p_demo = commands.add_parser("demo", help="sandbox + sync into the local DuckDB + summary")
    p_demo.add_argument("--districts", type=int, default=3, help="how many synthetic districts")
    p_demo.add_argument("--students", type=int, default=5000, help="students in the largest district")
    p_demo.add_argument("--seed", type=int, default=42, help="the same seed gives the same districts")
    for choice in commands._choices_actions:  # each command's --help: its one-line description and its defaults
        command = commands.choices[choice.dest]
        command.description = command.description or choice.help[0].upper() + choice.help[1:] + "."
        command.formatter_class = DefaultsShown

    args = parser.parse_args(argv)
    try:
        if args.command == "sync":
            return sync.sync(args.districts, incremental=args.incremental, accept_mass_change=args.accept_mass_change)
        if args.command == "status":
            return operations.status(args.json, district_id=args.district)
        if args.command == "approve":
            return operations.approve(args.districts, args.all_blocked, args.yes)
        if args.command == "grants":
            return maintenance.grants()
        if args.command == "forget":
            return maintenance.forget(args.district, args.yes)
        if args.command == "report":
            return maintenance.report(args.district, args.school)
        if args.command == "dictionary":
            return maintenance.dictionary()
        if args.command == "sandbox":
            return sandbox.sandbox(args)
        return sandbox.demo(args)
    except (RosterError, CleverAPIError) as exc:  # a mistake the user can fix: one sentence, no traceback
        print(f"roster-pipeline: {exc}", file=sys.stderr)
        return 2

