"""The raw Clever load as partitioned Dagster assets: one asset per raw table, one run per district."""

import dlt
from dagster import AssetExecutionContext, AssetKey, AssetSpec
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from roster_pipeline.clever.settings import DESCRIPTIONS, RAW_DATASET
from roster_pipeline.clever.source import clear_emptied_tables, clever_source
from roster_pipeline.partitions import district_partitions
from roster_pipeline.resources import CleverResource, WarehouseResource
from roster_pipeline.warehouse import Warehouse

RAW_GROUP = "clever_raw"
OWNER = "team:data-engineering"
WAREHOUSE_POOL = "roster_warehouse"  # DuckDB allows one writer: dagster.yaml limits this pool
PLACEHOLDER_DISTRICT = "0" * 24  # the definition-time source only lists resources; it never fetches


class CleverTranslator(DagsterDltTranslator):
    """Raw tables as `clever_raw/<table>` assets, documented, with no made-up upstream assets."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        name = data.resource.name
        return spec.replace_attributes(
            key=AssetKey([RAW_GROUP, name]),
            deps=[],
            description=f"{DESCRIPTIONS[name]} Raw Clever data in `{RAW_DATASET}.{name}`, "
                        "one slice per district (`district_id`).",
            group_name=RAW_GROUP,
            owners=[OWNER],
            kinds={"dlt", data.destination.destination_name if data.destination else "duckdb"},
        )


def build_clever_raw_assets(warehouse: Warehouse):
    """The `@dlt_assets` for the configured warehouse kind (its kind tag shows in the UI)."""

    @dlt_assets(
        dlt_source=clever_source(PLACEHOLDER_DISTRICT),
        dlt_pipeline=dlt.pipeline(
            pipeline_name="clever_raw", destination=warehouse.kind, dataset_name=RAW_DATASET,
            pipelines_dir=str(warehouse.dlt_dir)),
        name="clever_raw",
        dagster_dlt_translator=CleverTranslator(),
        partitions_def=district_partitions,
        pool=WAREHOUSE_POOL,
    )
    def clever_raw(context: AssetExecutionContext, dlt: DagsterDltResource, clever: CleverResource,
                   warehouse: WarehouseResource):
        """Load every Clever collection of one district into the raw dataset, replacing its slice."""
        district_id = context.partition_key
        pipeline = warehouse.warehouse().raw_pipeline(district_id)
        yield from dlt.run(context=context, dlt_source=clever.source_for(district_id), dlt_pipeline=pipeline)
        emptied = clear_emptied_tables(pipeline, district_id)
        if emptied:
            context.log.info(f"District {district_id}: no rows this time in {', '.join(emptied)}; old rows removed.")

    return clever_raw
