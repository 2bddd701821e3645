"""The `clever_raw` group: what dlt loads from Clever, one asset per raw table."""

from dagster import Definitions

from roster_pipeline.defs.clever_raw.assets import build_clever_raw_assets
from roster_pipeline.warehouse.connection import Warehouse


def clever_raw_definitions(warehouse: Warehouse) -> Definitions:
    return Definitions(assets=[build_clever_raw_assets(warehouse)])
