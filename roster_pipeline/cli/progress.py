"""What a person at the terminal sees while a long sync pages through Clever.

The Clever layer logs its paging progress to one logger; the Dagster run log (the UI) gets those
lines anyway, and this handler mirrors them on the terminal for whoever started the sync.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from roster_pipeline.operations.terminal import printable


class ProgressDisplay(logging.Handler):
    """A long sync's paging progress on the terminal: one updating line per collection on a TTY, plain lines otherwise.

    The same lines go to the Dagster run log (the UI); this only mirrors them for the person at the CLI.
    """

    def __init__(self, out) -> None:
        super().__init__(logging.INFO)
        self.out = out
        self.tty = hasattr(out, "isatty") and out.isatty()

    @contextmanager
    def attached(self, logger_name: str):
        logger = logging.getLogger(logger_name)
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = printable(record.getMessage())  # may quote Clever's names; our own escapes are added below
        if not self.tty:
            print(f"  {message}", file=self.out)
            return
        done = ": done," in message
        print(f"\r\x1b[2K  {'✓' if done else '…'} {message}", end="\n" if done else "", file=self.out, flush=True)
