"""The `reports` group: the school confirmation pages."""

from dagster import Definitions

from roster_pipeline.defs.reports.assets import build_school_confirmation


def reports_definitions(warehouse_kind: str) -> Definitions:
    return Definitions(assets=[build_school_confirmation(warehouse_kind)])
