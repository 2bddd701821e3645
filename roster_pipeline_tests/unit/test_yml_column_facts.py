"""The layers' yml files are the one home of column facts: the loader, the pandera contracts, the
data dictionary and the Dagster column schemas all read them, and a contract built from them
catches what it must, naming records by id only. Fast: no sync, no Dagster run, DuckDB in memory.
"""

from __future__ import annotations

import ibis
import pytest
import yaml

from roster_pipeline.clever.pages import pair_schema
from roster_pipeline.clever.settings import LIST, LIST_POSITION, RAW_KEYS, SECTION_PAIR_TABLES, TABLES
from roster_pipeline.modeling.contract_check import RECORD_KEYS, check_contract
from roster_pipeline.modeling.contracts import (
    TABLE_TESTS,
    TYPES,
    contract_for,
    foreign_keys,
    seed_of,
    static_contract,
)
from roster_pipeline.modeling.project import LAYERS, SQL_DIR, SqlProject
from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.modeling.record_keys import checked_tables
from roster_pipeline.modeling.rules import RulesProfile
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA

PROJECT = SqlProject()
DISTRICT = "0123456789abcdef01234567"
KNOWN_COLUMN_TESTS = {"not_null", "unique", "accepted_values", "relationships", "matches", "not_empty",
                      "roster_grade_in_range"}
IBIS_TYPES = {"varchar": "string", "integer": "int32", "bigint": "int64", "boolean": "boolean", "date": "date",
              "timestamp with time zone": "timestamp('UTC', 6)"}  # what both warehouses report through Ibis
MART_SCHEMAS = {name: {c: IBIS_TYPES[spec["data_type"]] for c, spec in doc["columns"].items()}
                for name, doc in PROJECT.docs.items() if name in {m.name for m in PROJECT.marts()}}


def yml_files():
    return [p for layer in LAYERS for p in sorted((SQL_DIR / layer).glob("*.yml"))]


def test_the_yml_is_split_by_layer_and_documents_every_model_where_it_lives():
    assert not (SQL_DIR / "schema.yml").exists()
    assert {p.relative_to(SQL_DIR).as_posix() for p in yml_files()} == {
        "staging/_sources.yml", "staging/_staging.yml", "intermediate/_intermediate.yml", "marts/_marts.yml"}
    for path in yml_files():
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            assert PROJECT.models[model["name"]].layer == path.parent.name, (path.name, model["name"])
    assert set(PROJECT.docs) == set(PROJECT.models)


def test_every_column_entry_parses_whole_with_a_type_and_a_description():
    """An unquoted `, ` in a flow-style description splits it into stray keys (it cut "Email, trimmed…" to "Email")."""
    for path in yml_files():
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        tables = [(m["name"], m) for m in content.get("models") or []]
        tables += [(t["name"], t) for s in content.get("sources") or [] for t in s["tables"]]
        allowed = {"name", "data_type", "description", "data_tests"} if "models" in content else {
            "name", "data_type", "description"}
        for table, entry in tables:
            for column in entry.get("columns", []):
                assert set(column) <= allowed, (path.name, table, column["name"], set(column) - allowed)
                assert column.get("data_type") and str(column.get("description", "")).strip(), (table, column["name"])


def test_only_the_marts_declare_tests_and_every_test_is_known():
    """Tests elsewhere would never run (the blocking checks are the marts' contracts)."""
    marts = {m.name for m in PROJECT.marts()}
    assert checked_tables() == [name for name in PROJECT.docs if name in marts] and set(checked_tables()) == marts
    for name, doc in PROJECT.docs.items():
        tests = [t for c in doc["columns"].values() for t in c["data_tests"]] + doc["data_tests"]
        if name not in marts:
            assert not tests, name
            continue
        for column, spec in doc["columns"].items():
            assert spec["data_type"] in TYPES, (name, column)
            assert {t.name for t in spec["data_tests"]} <= KNOWN_COLUMN_TESTS, (name, column)
        assert {t.name for t in doc["data_tests"]} <= {"dbt_utils.unique_combination_of_columns", *TABLE_TESTS}, name
        for column, other, other_column in foreign_keys(name):
            assert other in marts and other_column in PROJECT.docs[other]["columns"], (name, column)


def test_the_sources_yml_and_the_loader_agree():
    """The loader keeps its own facts (tables, Clever paths, keys); the yml documents the same tables and columns."""
    sources = PROJECT.sources["clever"]
    assert set(sources) == {*TABLES, *SECTION_PAIR_TABLES}
    for table, (_path, _query, columns) in TABLES.items():
        # Sections' student and teacher lists are loaded into the pair tables, not into sections.
        loaded = [c for c in columns if not (table == "sections" and c[0] in SECTION_PAIR_TABLES.values())]
        documented = sources[table]["columns"]
        assert list(documented) == ["district_id", *(name for name, _, _ in loaded)], table
        for name, path, kind in loaded:
            assert f"`{'.'.join(path)}`" in documented[name]["description"], (table, name)  # names its Clever field
            assert documented[name]["data_type"] == "varchar", (table, name)
            assert ("JSON list" in documented[name]["description"]) == (kind == LIST), (table, name)
    for table in SECTION_PAIR_TABLES:
        assert list(sources[table]["columns"]) == pair_schema(table).names, table
    assert pair_schema("section_teachers").names[-1] == LIST_POSITION  # the teacher list's order is kept
    for table, key in RAW_KEYS.items():
        assert set(key) <= set(sources[table]["columns"]), table
    assert {s for m in PROJECT.models.values() for s in m.sources} <= set(sources)
    assert all(doc["description"] for doc in sources.values())


def test_a_contract_is_the_marts_yml_column_for_column():
    for table in checked_tables():
        doc, schema = PROJECT.docs[table], static_contract(table)
        assert schema.strict is True, table
        assert list(schema.columns) == list(doc["columns"]), table
        unique = [[c] for c, spec in doc["columns"].items() for t in spec["data_tests"] if t.name == "unique"]
        unique += [list(t.args["combination_of_columns"]) for t in doc["data_tests"]
                   if t.name == "dbt_utils.unique_combination_of_columns"]
        assert (schema.unique or []) == unique, table
        for name, spec in doc["columns"].items():
            column = schema.columns[name]
            assert column.nullable == ("not_null" not in {t.name for t in spec["data_tests"]}), (table, name)
            assert column.dtype.type == ibis.dtype(IBIS_TYPES[spec["data_type"]]), (table, name)
        assert len(schema.checks) == sum(t.name in TABLE_TESTS for t in doc["data_tests"]), table


def test_the_contracts_keep_their_checks_and_record_keys():
    """What the contracts checked before the yml held them, pinned: same keys, names and record ids."""
    assert RECORD_KEYS == {
        "districts": ("district_id",), "schools": ("school_id",), "students": ("student_id",),
        "teachers": ("teacher_id",), "sections": ("section_id",), "enrollments": ("section_id", "student_id"),
        "demographics": ("student_id",), "admins": ("user_id", "role", "school_id"),
        "rejected_records": ("entity", "record_id", "action"), "school_roster_summary": ("school_id",),
        "section_teachers": ("section_id", "teacher_id")}
    assert {t: static_contract(t).unique for t in checked_tables()} == {
        "districts": [["district_id"]], "schools": [["school_id"]], "students": [["student_id"]],
        "teachers": [["teacher_id"], ["email"]], "sections": [["section_id"]],
        "enrollments": [["section_id", "student_id"]], "demographics": [["student_id"]],
        "admins": [["user_id", "role", "school_id"]], "rejected_records": None,
        "school_roster_summary": [["school_id"]], "section_teachers": [["section_id", "teacher_id"]]}
    assert {t: foreign_keys(t) for t in checked_tables() if foreign_keys(t)} == {
        "students": [("school_id", "schools", "school_id")], "teachers": [("school_id", "schools", "school_id")],
        "sections": [("school_id", "schools", "school_id"), ("teacher_id", "teachers", "teacher_id")],
        "enrollments": [("section_id", "sections", "section_id"), ("student_id", "students", "student_id"),
                        ("teacher_id", "teachers", "teacher_id")],
        "demographics": [("student_id", "students", "student_id")],
        "section_teachers": [("section_id", "sections", "section_id"), ("teacher_id", "teachers", "teacher_id")]}

    def checks(table: str) -> dict[str, list[str]]:
        schema = contract_for(table, RulesProfile.load(None).for_district(DISTRICT),
                              lambda name: ibis.table(MART_SCHEMAS[name], name=name))
        found = {c: [check.error for check in col.checks] for c, col in schema.columns.items() if col.checks}
        return found | ({"(table)": [check.error for check in schema.checks]} if schema.checks else {})

    email = r"str_matches('^[^@\s]+@[^@\s]+\.[a-z]{2,}$')"
    district = "str_matches('^[0-9a-f]{24}$')"
    assert checks("students") == {"district_id": [district], "school_id": ["school_id must exist in schools.school_id"],
                                  "email": [email], "grade": ["grade must be 0..12"]}
    assert checks("teachers") == {"district_id": [district], "school_id": ["school_id must exist in schools.school_id"],
                                  "email": [email]}
    assert checks("enrollments")["teacher_email"] == [email] and checks("sections")["grade"] == ["grade must be 0..12"]
    assert checks("demographics")["frl_status"] == ["isin(['free', 'reduced', 'paid', 'other'])"]
    assert checks("admins")["role"] == ["isin(['school_admin', 'district_admin'])"]
    rejected = checks("rejected_records")
    assert rejected["entity"] == ["isin(['school', 'student', 'teacher', 'section', 'admin', 'district'])"]
    assert rejected["action"] == ["isin(['excluded', 'field_nulled', 'not_linked', 'link_dropped', 'notice'])"]
    assert rejected["detail"] == ["str_length(1, None)"]
    assert rejected["reason_code"] == [f"isin({sorted(REASON_CODES)})"]
    assert checks("demographics")["(table)"] == [
        "frl_eligible must be true for free/reduced, false for paid, NULL otherwise"]
    assert checks("admins")["(table)"] == ["district admins have no school"]
    assert rejected["(table)"] == ["the action must match the reason code's action"]
    assert checks("school_roster_summary")["(table)"] == ["every count is a whole number ≥ 0"]
    assert checks("section_teachers")["(table)"] == ["each section has exactly one primary teacher"]



@pytest.fixture
def build_tables():
    """An in-memory DuckDB with a build schema holding one district's schools and students."""
    con = ibis.duckdb.connect()
    con.raw_sql(f"create schema {BUILD_SCHEMA}")
    con.raw_sql(f"create table {BUILD_SCHEMA}.schools (district_id varchar, school_id varchar, name varchar, "
                "sis_id varchar, state_id varchar, nces_id varchar, low_grade integer, high_grade integer)")
    con.raw_sql(f"insert into {BUILD_SCHEMA}.schools values ('{DISTRICT}', 's1', 'One', null, null, null, 0, 5)")
    con.raw_sql(f"create table {BUILD_SCHEMA}.students (district_id varchar, student_id varchar, person_key varchar, "
                "school_id varchar, first_name varchar, last_name varchar, gender varchar, birth_date date, state_id varchar, "
                "sis_id varchar, email varchar, grade integer, race varchar, hispanic_ethnicity varchar)")
    yield con
    con.disconnect()


def add_student(con, student_id: str, school_id: str = "s1", email: str | None = "kid@school.org", grade: int = 3):
    email_sql = "null" if email is None else repr(email)
    con.raw_sql(f"insert into {BUILD_SCHEMA}.students values ('{DISTRICT}', '{student_id}', '{student_id}', "
                f"'{school_id}', 'Secret', 'Person', null, null, null, null, {email_sql}, {grade}, null, null)")


def test_a_contract_built_from_the_yml_catches_bad_rows_and_names_them_by_id_only(build_tables):
    con, rules = build_tables, RulesProfile.load(None).for_district(DISTRICT)
    add_student(con, "st1")
    add_student(con, "st2", email=None)
    assert check_contract(con, "students", DISTRICT, rules).passed
    add_student(con, "st3", email="Not an email")
    add_student(con, "st4", school_id="elsewhere", grade=13)
    add_student(con, "st1")
    result = check_contract(con, "students", DISTRICT, rules)
    found = {(f.column, f.check, f.reason): f.record_ids for f in result.failures}
    assert found == {
        ("email", r"str_matches('^[^@\s]+@[^@\s]+\.[a-z]{2,}$')", "DATAFRAME_CHECK"): ("st3",),
        ("grade", "grade must be 0..12", "DATAFRAME_CHECK"): ("st4",),
        ("school_id", "school_id must exist in schools.school_id", "DATAFRAME_CHECK"): ("st4",),
        ("student_id", "multiple_fields_uniqueness", "DUPLICATES"): ("st1", "st1"),
    }
    assert "Not an email" not in result.failures_markdown and "Secret" not in result.failures_markdown


def test_a_column_the_yml_does_not_list_fails_the_contract(build_tables):
    con = build_tables
    add_student(con, "st1")
    con.raw_sql(f"alter table {BUILD_SCHEMA}.students add column shoe_size integer")
    result = check_contract(con, "students", DISTRICT, RulesProfile.load(None).for_district(DISTRICT))
    assert [(f.column, f.check) for f in result.failures] == [("shoe_size", "column_in_schema")]


def test_a_section_needs_exactly_one_primary_teacher_and_the_failure_names_its_links(build_tables):
    """section_teachers' table-wide rule, run in the warehouse: two primaries, or none, fail it by id."""
    con, rules = build_tables, RulesProfile.load(None).for_district(DISTRICT)
    con.raw_sql(f"create table {BUILD_SCHEMA}.section_teachers (district_id varchar, school_id varchar, "
                "section_id varchar, teacher_id varchar, is_primary boolean)")
    for table, key in (("sections", "section_id"), ("teachers", "teacher_id")):
        con.raw_sql(f"create table {BUILD_SCHEMA}.{table} (district_id varchar, {key} varchar)")
        con.raw_sql(f"insert into {BUILD_SCHEMA}.{table} values " + ", ".join(
            f"('{DISTRICT}', '{id_}')" for id_ in ("x1", "x2", "x3")))

    def link(section: str, teacher: str, primary: bool) -> None:
        con.raw_sql(f"insert into {BUILD_SCHEMA}.section_teachers values ('{DISTRICT}', 's1', '{section}', "
                    f"'{teacher}', {str(primary).lower()})")

    link("x1", "x1", True)
    link("x1", "x2", False)
    link("x2", "x2", True)
    assert check_contract(con, "section_teachers", DISTRICT, rules).passed
    link("x2", "x3", True)  # two primaries
    link("x3", "x1", False)  # none
    result = check_contract(con, "section_teachers", DISTRICT, rules)
    assert [(f.column, f.check, f.rows, f.record_ids) for f in result.failures] == [
        ("(table)", "each section has exactly one primary teacher", 3, ("x2:x2", "x2:x3", "x3:x1"))]


def test_the_dictionary_and_the_dagster_column_schemas_show_the_yml_tests():
    from roster_pipeline.defs.clever_raw.assets import raw_column_schema
    from roster_pipeline.defs.roster.assets import column_schema
    from roster_pipeline.publishing.data_dictionary import render

    text = render()
    assert "| `school_id` | varchar | Primary school (in schools). | not null; in `schools.school_id` |" in text
    assert ("| `reason_code` | varchar | Reason code (see seeds/reason_codes.csv). "
            "| not null; a `code` of `seeds/reason_codes.csv` |") in text
    assert "Also checked across columns: district admins have no school." in text
    students = {c.name: c for c in column_schema(PROJECT, PROJECT.models["students"]).columns}
    assert students["student_id"].constraints.unique and not students["student_id"].constraints.nullable
    assert students["email"].constraints.nullable and students["email"].constraints.other == [
        r"matches `^[^@\s]+@[^@\s]+\.[a-z]{2,}$`"]
    assert students["first_name"].constraints is None or students["first_name"].constraints.nullable
    for table in PROJECT.sources["clever"]:
        schema = raw_column_schema(table)
        assert [c.name for c in schema.columns] == list(PROJECT.sources["clever"][table]["columns"]), table
        assert all(c.description for c in schema.columns), table
    assert seed_of(PROJECT.docs["rejected_records"]["columns"]["reason_code"]["data_tests"][1]) == "reason_codes"
