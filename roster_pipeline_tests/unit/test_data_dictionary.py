"""docs/data_dictionary.md is generated from the models' yml, the rules profile and the reason codes, and kept fresh."""

from roster_pipeline.modeling.project import SqlProject
from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.publishing.data_dictionary import DICTIONARY_PATH, render


def test_the_data_dictionary_is_up_to_date():
    assert DICTIONARY_PATH.read_text(encoding="utf-8") == render(), (
        "docs/data_dictionary.md is stale: run `roster-pipeline dictionary` and commit the result")


def test_the_dictionary_covers_every_roster_table_column_and_reason_code():
    text = render()
    project = SqlProject()
    for mart in project.marts():
        assert f"### `roster.{mart.name}`" in text
        for column, doc in project.docs[mart.name]["columns"].items():
            assert f"| `{column}` | {doc['data_type']} |" in text, (mart.name, column)
    for code in REASON_CODES.values():
        assert f"| `{code.code}` |" in text and code.fix.split(".")[0] in text
    assert "Kindergarten = 0" in text and "math, ela" in text


def test_the_yml_columns_parse_whole_and_the_dictionary_shows_the_postgres_ddl():
    """An unquoted comma in a flow-style description splits it into stray keys (it cut "Email, trimmed…" to "Email")."""
    import yaml

    from roster_pipeline.modeling.project import LAYERS, SQL_DIR

    known = {"name", "data_type", "description", "data_tests", "meta"}
    models = [m for layer in LAYERS for path in sorted((SQL_DIR / layer).glob("*.yml"))
              for m in yaml.safe_load(path.read_text()).get("models") or []]
    assert {m["name"] for m in models} >= {"students", "enrollments", "int_students__classified"}
    stray = [(m["name"], c["name"], sorted(set(c) - known)) for m in models for c in m.get("columns", []) if set(c) - known]
    assert not stray
    text = render()
    assert "alter table roster.students add constraint students__district_id_student_id__key primary key " \
           "(district_id, student_id);" in text
    assert "create index students__district_id_school_id on roster.students (district_id, school_id);" in text
    assert "unique nulls not distinct (district_id, user_id, role, school_id)" in text
