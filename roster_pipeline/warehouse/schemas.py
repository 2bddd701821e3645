"""Where each layer lives in the warehouse: one schema per stage of a district's data."""

from roster_pipeline.clever.settings import RAW_DATASET  # dlt's dataset: raw Clever records, one slice per district

STAGING_SCHEMA = "roster_staging"  # views over the raw tables
BUILD_SCHEMA = "roster_build"      # district slices being built and checked
PUBLISHED_SCHEMA = "roster"        # what analysts read (publishing/publish.py)

__all__ = ["RAW_DATASET", "STAGING_SCHEMA", "BUILD_SCHEMA", "PUBLISHED_SCHEMA"]
