"""Pandera contracts for every `roster` table, run as blocking checks before a district publishes.

The static part of each contract (types, keys, formats) is a `DataFrameModel`; the parts that
depend on the district (its grade range from the rules profile, the ids other tables must
contain) are added per validation in `contract_for`.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from roster_pipeline.reason_codes import REASON_CODES
from roster_pipeline.rules import DistrictRules

DISTRICT_ID = r"^[0-9a-f]{24}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"  # lower-case: emails are normalized before publishing
NullableInt = pd.Int64Dtype


class _RosterTable(pa.DataFrameModel):
    district_id: Series[str] = pa.Field(str_matches=DISTRICT_ID)

    class Config:
        coerce = True
        strict = True  # a column the contract does not know is a change to review, not to publish


class SchoolsContract(_RosterTable):
    school_id: Series[str] = pa.Field(unique=True)
    name: Series[str] = pa.Field(nullable=True)
    sis_id: Series[str] = pa.Field(nullable=True)
    state_id: Series[str] = pa.Field(nullable=True)
    nces_id: Series[str] = pa.Field(nullable=True)
    low_grade: Series[NullableInt] = pa.Field(nullable=True)
    high_grade: Series[NullableInt] = pa.Field(nullable=True)


class StudentsContract(_RosterTable):
    student_id: Series[str] = pa.Field(unique=True)
    school_id: Series[str]
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    gender: Series[str] = pa.Field(nullable=True)
    birth_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    state_id: Series[str] = pa.Field(nullable=True)
    sis_id: Series[str] = pa.Field(nullable=True)
    email: Series[str] = pa.Field(nullable=True, str_matches=EMAIL)
    grade: Series[NullableInt]
    race: Series[str] = pa.Field(nullable=True)
    hispanic_ethnicity: Series[str] = pa.Field(nullable=True)


class TeachersContract(_RosterTable):
    teacher_id: Series[str] = pa.Field(unique=True)
    school_id: Series[str]
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    email: Series[str] = pa.Field(str_matches=EMAIL, unique=True)  # unique within the district
    sis_id: Series[str] = pa.Field(nullable=True)
    state_id: Series[str] = pa.Field(nullable=True)
    title: Series[str] = pa.Field(nullable=True)


class SectionsContract(_RosterTable):
    section_id: Series[str] = pa.Field(unique=True)
    school_id: Series[str]
    name: Series[str] = pa.Field(nullable=True)
    period: Series[str] = pa.Field(nullable=True)
    subject: Series[str]
    grade: Series[NullableInt]
    course_name: Series[str] = pa.Field(nullable=True)
    term_name: Series[str] = pa.Field(nullable=True)
    teacher_id: Series[str]


class EnrollmentsContract(_RosterTable):
    school_id: Series[str]
    section_id: Series[str]
    student_id: Series[str]
    teacher_id: Series[str]
    period_name: Series[str] = pa.Field(nullable=True)
    subject: Series[str]
    grade: Series[NullableInt]
    teacher_first_name: Series[str] = pa.Field(nullable=True)
    teacher_last_name: Series[str] = pa.Field(nullable=True)
    teacher_email: Series[str] = pa.Field(str_matches=EMAIL)

    @pa.dataframe_check(error="an enrollment (section_id, student_id) appears twice")
    def one_row_per_section_student(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(subset=["section_id", "student_id"], keep=False)


class DemographicsContract(_RosterTable):
    student_id: Series[str] = pa.Field(unique=True)
    special_education: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    frl_status: Series[str] = pa.Field(nullable=True, isin=["free", "reduced", "paid", "other"])
    frl_eligible: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    ell: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    section_504: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    gifted: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    home_language: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(error="frl_eligible must be true for free/reduced, false for paid, NULL otherwise")
    def frl_eligible_follows_status(cls, df: pd.DataFrame) -> Series[bool]:
        expected = df["frl_status"].map({"free": True, "reduced": True, "paid": False}).astype("boolean")
        return (expected.isna() & df["frl_eligible"].isna()) | (expected == df["frl_eligible"]).fillna(False)


class AdminsContract(_RosterTable):
    user_id: Series[str]
    role: Series[str] = pa.Field(isin=["school_admin", "district_admin"])
    school_id: Series[str] = pa.Field(nullable=True)
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    email: Series[str] = pa.Field(nullable=True)
    title: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(error="district admins have no school; an admin appears once per school")
    def school_matches_role(cls, df: pd.DataFrame) -> Series[bool]:
        district_level = (df["role"] == "district_admin") & df["school_id"].isna()
        school_level = df["role"] == "school_admin"
        unique = ~df.duplicated(subset=["user_id", "role", "school_id"], keep=False)
        return (district_level | school_level) & unique


class RejectedRecordsContract(_RosterTable):
    entity: Series[str] = pa.Field(isin=["school", "student", "teacher", "section", "admin"])
    record_id: Series[str]
    record_name: Series[str] = pa.Field(nullable=True)
    school_id: Series[str] = pa.Field(nullable=True)
    reason_code: Series[str] = pa.Field(isin=sorted(REASON_CODES))
    action: Series[str] = pa.Field(isin=["excluded", "field_nulled"])
    detail: Series[str] = pa.Field(str_length={"min_value": 1})

    @pa.dataframe_check(error="the action must match the reason code's action")
    def action_matches_reason(cls, df: pd.DataFrame) -> Series[bool]:
        return df["action"] == df["reason_code"].map({c: r.action for c, r in REASON_CODES.items()})


class SchoolRosterSummaryContract(pa.DataFrameModel):
    district_id: Series[str] = pa.Field(str_matches=DISTRICT_ID)
    school_id: Series[str] = pa.Field(unique=True)
    school_name: Series[str] = pa.Field(nullable=True)

    class Config:
        coerce = True
        strict = False  # the per-grade count columns follow; each is checked below


CONTRACTS: dict[str, type[pa.DataFrameModel]] = {
    "schools": SchoolsContract, "students": StudentsContract, "teachers": TeachersContract,
    "sections": SectionsContract, "enrollments": EnrollmentsContract, "demographics": DemographicsContract,
    "admins": AdminsContract, "rejected_records": RejectedRecordsContract,
    "school_roster_summary": SchoolRosterSummaryContract,
}

# Foreign keys checked per district: table.column must be among the ids of another table.
FOREIGN_KEYS = {
    "students": [("school_id", "schools", "school_id")],
    "teachers": [("school_id", "schools", "school_id")],
    "sections": [("school_id", "schools", "school_id"), ("teacher_id", "teachers", "teacher_id")],
    "enrollments": [("student_id", "students", "student_id"), ("section_id", "sections", "section_id"),
                    ("teacher_id", "teachers", "teacher_id")],
    "demographics": [("student_id", "students", "student_id")],
}


def contract_for(table: str, rules: DistrictRules, related_ids: dict[tuple[str, str], set]) -> pa.DataFrameSchema:
    """The table's contract for one district: its grade range and foreign keys added."""
    schema = CONTRACTS[table].to_schema()
    updates: dict[str, dict] = {}
    low, high = rules.grade_range
    if "grade" in schema.columns:
        updates["grade"] = {"checks": [pa.Check.in_range(low, high, error=f"grade must be {low}..{high}")]}
    for column, other_table, other_column in FOREIGN_KEYS.get(table, []):
        ids = related_ids[(other_table, other_column)]
        check = pa.Check(lambda s, ids=ids: s.isna() | s.isin(ids),
                         error=f"{column} must exist in {other_table}.{other_column}")
        updates.setdefault(column, {"checks": list(schema.columns[column].checks)})["checks"].append(check)
    if table == "school_roster_summary":
        counts = pa.Column(int, checks=pa.Check.ge(0), regex=True, coerce=True)
        schema = schema.add_columns({r"^(students|teachers|sections|enrollments|excluded_).*": counts})
    return schema.update_columns(updates) if updates else schema
