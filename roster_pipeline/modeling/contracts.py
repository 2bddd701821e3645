"""Pandera contracts for every `roster` table, run as blocking checks before a district publishes.

The contracts use pandera's Ibis backend: every check becomes a query that the warehouse
(DuckDB or Postgres) runs over the district's slice in place, so a 7,000,000-row enrollments
table is validated without being pulled into Python memory (pandas took 17 s and gigabytes
at 1M students; the pushed-down checks stream). The static part of each contract (types, keys,
formats) is a `DataFrameModel`; the parts that depend on the district (its grade range from the
rules profile, foreign keys to the district's other tables) are added in `contract_for`.
"""

from __future__ import annotations

import copy

import ibis
import ibis.expr.datatypes as dt
import pandera.ibis as pa
from pandera.api.ibis.types import IbisData

from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.modeling.rules import DistrictRules

DISTRICT_ID = r"^[0-9a-f]{24}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"  # lower-case: emails are normalized before publishing
Text = dt.String
Grade = dt.Int32  # SQL `integer` on both warehouses
Flag = dt.Boolean
Moment = dt.Timestamp(timezone="UTC", scale=6)  # timestamp with time zone, microseconds, on both warehouses


def _all_of(data: IbisData, condition) -> ibis.Table:
    """A table-wide check's answer: one boolean per row (pandera's Ibis backend takes a table)."""
    return data.table.select(passed=condition)


class _RosterTable(pa.DataFrameModel):
    district_id: Text = pa.Field(str_matches=DISTRICT_ID)

    class Config:
        strict = True  # a column the contract does not know is a change to review, not to publish


class DistrictsContract(_RosterTable):
    name: Text = pa.Field(nullable=True)
    state: Text = pa.Field(nullable=True)
    last_sync: Moment = pa.Field(nullable=True)
    pause_start: Moment = pa.Field(nullable=True)
    pause_end: Moment = pa.Field(nullable=True)
    published_at: Moment = pa.Field(nullable=True)  # stamped by the publish

    class Config:
        unique = [["district_id"]]


class SchoolsContract(_RosterTable):
    school_id: Text
    name: Text = pa.Field(nullable=True)
    sis_id: Text = pa.Field(nullable=True)
    state_id: Text = pa.Field(nullable=True)
    nces_id: Text = pa.Field(nullable=True)
    low_grade: Grade = pa.Field(nullable=True)
    high_grade: Grade = pa.Field(nullable=True)

    class Config:
        unique = [["school_id"]]


class StudentsContract(_RosterTable):
    student_id: Text
    school_id: Text
    first_name: Text = pa.Field(nullable=True)
    last_name: Text = pa.Field(nullable=True)
    gender: Text = pa.Field(nullable=True)
    birth_date: dt.Date = pa.Field(nullable=True)
    state_id: Text = pa.Field(nullable=True)
    sis_id: Text = pa.Field(nullable=True)
    email: Text = pa.Field(nullable=True, str_matches=EMAIL)
    grade: Grade
    race: Text = pa.Field(nullable=True)
    hispanic_ethnicity: Text = pa.Field(nullable=True)

    class Config:
        unique = [["student_id"]]


class TeachersContract(_RosterTable):
    teacher_id: Text
    school_id: Text
    first_name: Text = pa.Field(nullable=True)
    last_name: Text = pa.Field(nullable=True)
    email: Text = pa.Field(str_matches=EMAIL)
    sis_id: Text = pa.Field(nullable=True)
    state_id: Text = pa.Field(nullable=True)
    title: Text = pa.Field(nullable=True)

    class Config:
        unique = [["teacher_id"], ["email"]]  # an email is unique within the district


class SectionsContract(_RosterTable):
    section_id: Text
    school_id: Text
    name: Text = pa.Field(nullable=True)
    period: Text = pa.Field(nullable=True)
    subject: Text
    grade: Grade
    course_name: Text = pa.Field(nullable=True)
    term_name: Text = pa.Field(nullable=True)
    teacher_id: Text

    class Config:
        unique = [["section_id"]]


class EnrollmentsContract(_RosterTable):
    school_id: Text
    section_id: Text
    student_id: Text
    teacher_id: Text
    period_name: Text = pa.Field(nullable=True)
    subject: Text
    grade: Grade
    teacher_first_name: Text = pa.Field(nullable=True)
    teacher_last_name: Text = pa.Field(nullable=True)
    teacher_email: Text = pa.Field(str_matches=EMAIL)

    class Config:
        unique = [["section_id", "student_id"]]  # one row per enrollment


FRL_ELIGIBLE = {"free": True, "reduced": True, "paid": False}


class DemographicsContract(_RosterTable):
    student_id: Text
    special_education: Flag = pa.Field(nullable=True)
    frl_status: Text = pa.Field(nullable=True, isin=["free", "reduced", "paid", "other"])
    frl_eligible: Flag = pa.Field(nullable=True)
    ell: Flag = pa.Field(nullable=True)
    section_504: Flag = pa.Field(nullable=True)
    gifted: Flag = pa.Field(nullable=True)
    home_language: Text = pa.Field(nullable=True)

    class Config:
        unique = [["student_id"]]

    @pa.dataframe_check(error="frl_eligible must be true for free/reduced, false for paid, NULL otherwise")
    def frl_eligible_follows_status(cls, data: IbisData) -> ibis.Table:
        t = data.table
        expected = t.frl_status.cases(*FRL_ELIGIBLE.items(), else_=ibis.null(dt.boolean))
        return _all_of(data, (expected.isnull() & t.frl_eligible.isnull()) | (expected == t.frl_eligible).fill_null(False))


class AdminsContract(_RosterTable):
    user_id: Text
    role: Text = pa.Field(isin=["school_admin", "district_admin"])
    school_id: Text = pa.Field(nullable=True)
    first_name: Text = pa.Field(nullable=True)
    last_name: Text = pa.Field(nullable=True)
    email: Text = pa.Field(nullable=True)
    title: Text = pa.Field(nullable=True)

    class Config:
        unique = [["user_id", "role", "school_id"]]  # an admin appears once per school

    @pa.dataframe_check(error="district admins have no school")
    def school_matches_role(cls, data: IbisData) -> ibis.Table:
        t = data.table
        return _all_of(data, ((t.role == "district_admin") & t.school_id.isnull()) | (t.role == "school_admin"))


class RejectedRecordsContract(_RosterTable):
    entity: Text = pa.Field(isin=["school", "student", "teacher", "section", "admin"])
    record_id: Text
    record_name: Text = pa.Field(nullable=True)
    school_id: Text = pa.Field(nullable=True)
    reason_code: Text = pa.Field(isin=sorted(REASON_CODES))
    action: Text = pa.Field(isin=["excluded", "field_nulled"])
    detail: Text = pa.Field(str_length={"min_value": 1})

    @pa.dataframe_check(error="the action must match the reason code's action")
    def action_matches_reason(cls, data: IbisData) -> ibis.Table:
        t = data.table
        expected = t.reason_code.cases(*((c, r.action) for c, r in REASON_CODES.items()), else_=ibis.null(dt.string))
        return _all_of(data, (t.action == expected).fill_null(False))


class SchoolRosterSummaryContract(pa.DataFrameModel):
    district_id: Text = pa.Field(str_matches=DISTRICT_ID)
    school_id: Text
    name: Text = pa.Field(nullable=True)

    class Config:
        strict = False  # the per-grade count columns follow the grade crosswalk; each is added below
        unique = [["school_id"]]


CONTRACTS: dict[str, type[pa.DataFrameModel]] = {
    "districts": DistrictsContract, "schools": SchoolsContract, "students": StudentsContract, "teachers": TeachersContract,
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
COUNT_COLUMNS = ("students", "teachers", "sections", "enrollments", "excluded_")


def contract_for(table: str, rules: DistrictRules, district_slice) -> pa.DataFrameSchema:
    """The table's contract for one district: its grade range and foreign keys added.

    `district_slice(name)` is the district's rows of another build table (an Ibis table), so a
    foreign key is a semi-join the warehouse runs, not a set of ids held in Python.
    """
    schema = copy.deepcopy(CONTRACTS[table].to_schema())  # to_schema() is cached: never mutate it
    low, high = rules.grade_range
    if "grade" in schema.columns:
        schema.columns["grade"].checks.append(pa.Check.in_range(low, high, error=f"grade must be {low}..{high}"))
    for column, other_table, other_column in FOREIGN_KEYS.get(table, []):
        ids = district_slice(other_table)[other_column]
        schema.columns[column].checks.append(pa.Check(
            lambda data, ids=ids: data.table[data.key].isnull() | data.table[data.key].isin(ids),
            error=f"{column} must exist in {other_table}.{other_column}"))
    if table == "school_roster_summary":
        counts = [c for c in district_slice(table).columns if c.startswith(COUNT_COLUMNS)]
        schema = schema.add_columns({c: pa.Column(dt.Int64) for c in counts})
        # One query for every count column, not one per column (the grade columns are many).
        schema.checks.append(pa.Check(
            lambda data, counts=counts: _all_of(data, ibis.and_(*(data.table[c].fill_null(0) >= 0 for c in counts))),
            error="every count is a whole number ≥ 0"))
    return schema
