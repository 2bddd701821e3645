"""docs/data_dictionary.md is generated from schema.yml, the rules profile and the reason codes, and kept fresh."""

from roster_pipeline.data_dictionary import DICTIONARY_PATH, render
from roster_pipeline.reason_codes import REASON_CODES
from roster_pipeline.sql_models import SqlProject


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
