"""Districts are partitions: each authorized district is synced, checked and published on its own."""

from dagster import DynamicPartitionsDefinition

from roster_pipeline.defs.constants import DISTRICT_PARTITIONS_NAME

# Dynamic, because districts arrive whenever they authorize the app (see the discovery sensor
# and `roster-pipeline sync`, which register new district ids here).
district_partitions = DynamicPartitionsDefinition(name=DISTRICT_PARTITIONS_NAME)
