"""The `roster` group: the SQL models, their blocking checks, and the publish."""

from dagster import Definitions

from roster_pipeline.defs.roster.assets import build_roster_assets
from roster_pipeline.modeling.project import sql_project


def roster_definitions(warehouse_kind: str) -> Definitions:
    return Definitions(assets=[build_roster_assets(sql_project(), warehouse_kind)])
