"""The `reports` group: each district's school confirmation pages, written after every publish."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from roster_pipeline.defs.clever_raw.assets import warehouse_pool
from roster_pipeline.defs.constants import OWNER, REPORTS_GROUP
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import RulesResource, WarehouseResource
from roster_pipeline.defs.roster.assets import PUBLISHED_KEY
from roster_pipeline.modeling.rules import RulesProfile
from roster_pipeline.reports.school_reports import reports_dir, subject_list, write_reports

SCHOOL_REPORTS_KEY = AssetKey([REPORTS_GROUP, "school_confirmation"])


def kept_sections_described(profile: RulesProfile) -> str:
    """The description's words for the sections a page lists: those of the subjects the rules profile keeps."""
    words = subject_list(profile.for_district(None).subjects_keep)
    source = f"`subjects.keep` of {profile.path.name}"
    if any("subjects" in overrides for overrides in profile.districts.values()):
        source += "; some districts keep other subjects"
    return f"the {words} sections ({source})" if words else f"no sections ({source} is empty)"


def build_school_confirmation(warehouse_kind: str):
    """The reports asset; it reads the warehouse, so on DuckDB it waits in the warehouse pool."""

    @asset(
        key=SCHOOL_REPORTS_KEY, group_name=REPORTS_GROUP, partitions_def=district_partitions, deps=[PUBLISHED_KEY],
        owners=[OWNER], kinds={"html", "csv"}, pool=warehouse_pool(warehouse_kind),
        description="Roster confirmation pages for school liaisons: one self-contained HTML page per school (and CSVs "
                    "of the same tables) with students per grade against the previous sync, "
                    f"{kept_sections_described(RulesProfile.load())} with teacher, co-teachers, period and enrollment "
                    "count, and every excluded record with the reason in plain words and the fix to make in the SIS; plus a "
                    "district index. Written under ROSTER_REPORTS_DIR (default: reports/ in the data directory), one "
                    "folder per district.",
    )
    def school_confirmation(context: AssetExecutionContext, warehouse: WarehouseResource,
                            rules: RulesResource) -> MaterializeResult:
        district_id = context.partition_key
        subjects = rules.profile().for_district(district_id).subjects_keep  # the profile the roster step used
        written = write_reports(warehouse.warehouse(), district_id, reports_dir(), subjects=subjects)
        context.log.info(f"Wrote {written['schools']} school pages to {written['folder']}.")
        if written["schools_without_page"]:
            context.log.warning(f"{len(written['schools_without_page'])} schools got no page: their id is not a Clever id "
                                f"(schools {', '.join(map(str, written['schools_without_page']))} of the district's list).")
        return MaterializeResult(metadata={
            "index": MetadataValue.path(str(written["index"])),
            "schools": MetadataValue.int(written["schools"]),
            "excluded_records": MetadataValue.int(written["excluded"]),
            "schools_preview": MetadataValue.md(written["preview"]),
        })

    return school_confirmation
