"""The plain layers' progress lines (`logging`), passed on to the run's event log while a step runs.

The engine and the Clever layer import no Dagster and log with `logging`; Dagster keeps what
reaches its own loggers, so a step forwards their records for as long as it calls them.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import get_dagster_logger


@contextmanager
def forwarded_to_run_log(*logger_names: str) -> Iterator[None]:
    """Forward INFO and above of the named loggers to the run's log until the block ends."""
    into_run = get_dagster_logger("roster_pipeline")

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            into_run.log(record.levelno, record.getMessage())

    loggers = [logging.getLogger(name) for name in logger_names]
    handler, levels = Forward(), [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)
