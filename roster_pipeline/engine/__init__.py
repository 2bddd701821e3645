"""The roster engine: one district's sync on a warehouse, in one straight order, without Dagster.

It takes a plan (which district, approved or not, the rules), runs the steps and returns a result
object (what each model built, the checks, the guard's verdict, what was published, the notices,
the seconds per phase). Progress goes to plain `logging` (logger `roster_pipeline.engine`). The
Dagster layer (`defs/`) only translates: plan from the run's tags and resources, result into
materializations, check results and metadata. Tests of behaviour call the engine directly.
"""

import logging

ENGINE_LOGGER = __name__  # the engine's progress lines (the Dagster layer forwards them to the run log)
# A library's logger: silent unless the application (the CLI, a Dagster step, a test) listens.
logging.getLogger(ENGINE_LOGGER).addHandler(logging.NullHandler())
