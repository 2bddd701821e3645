"""What the roster step works out in Python before the SQL models: checks SQL cannot make.

- Email syntax. A pattern cannot say whether a mail server would accept an address (the default
  pattern let `hauc"k.haylie@example.com` through), so email-validator judges them (syntax only,
  no DNS). The models run in DuckDB or Postgres and cannot call it, so the distinct emails the
  build reads are judged here and the refused ones written to `roster_build.invalid_emails`
  (email → reason), a source the classified models join (`source('pipeline', 'invalid_emails')`).
  Most addresses are plain (letters, digits, dots, a hyphenated domain); the warehouse sets them
  aside with a pattern of addresses the library always accepts (`PLAIN_ADDRESS`, a unit test draws
  hundreds of them each run), so only the others come to Python: a million students cost one query.
- Whether the district shares demographics. When no student carries any demographic value, the
  district does not share them (an application on API v3.0, or a district that turned them off):
  `demographics` then publishes no rows for it and `rejected_records` says DEMOGRAPHICS_NOT_SHARED.
  The answer depends on every student, not only those an incremental build reads, so it is a build
  parameter (`demographics_shared`): part of the build's fingerprint, a change of it rebuilds the
  district whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import email_validator

from roster_pipeline.modeling.incremental import AFFECTED
from roster_pipeline.warehouse.connection import Statements, placeholder, table_columns
from roster_pipeline.warehouse.dialect import regex_match
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, RAW_DATASET

INVALID_EMAILS_TABLE = "invalid_emails"
INVALID_EMAILS = f"{BUILD_SCHEMA}.{INVALID_EMAILS_TABLE}"
INVALID_EMAILS_DDL = "district_id varchar, email varchar, reason varchar"

# Plain addresses, which email-validator accepts whatever their letters: a dot-atom local part of
# letters, digits, `_`, `+`, `-`; domain labels of letters and digits joined by single hyphens; a
# top-level domain of two letters or more. With at most 64 characters no part can be too long.
PLAIN_ADDRESS = r"^[a-z0-9_+-]+(\.[a-z0-9_+-]+)*@[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)*\.[a-z]{2,}$"
PLAIN_MAX_LENGTH = 64
# ... unless it ends in a special-use name (`.test`, `.local`, ...) the library refuses for email.
SPECIAL_USE_ENDING = "[.@](" + "|".join(map(re.escape, email_validator.SPECIAL_USE_DOMAIN_NAMES)) + ")$"

# The raw fields of the `demographics` table: a district whose students carry none does not share them.
DEMOGRAPHIC_FIELDS = ("ell_status", "frl_status", "iep_status", "section_504_status", "gifted_status", "home_language")
# Raw table → the entity of incremental.py's affected keys.
PEOPLE = {"students": "student", "teachers": "teacher"}


@dataclass(frozen=True)
class EmailCheck:
    """One build's email check: emails read by Python (not plain), and how many were refused."""

    judged: int
    invalid: int


def email_problem(email: str) -> str | None:
    """Why a mail server would refuse `email` (email-validator's sentence), or None for a valid address."""
    try:
        email_validator.validate_email(email, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        return str(error)
    return None


def is_plain(email: str) -> bool:
    """The warehouse's test (see `_not_plain`) in Python: the unit test holds the library to it."""
    return (len(email) <= PLAIN_MAX_LENGTH and re.search(PLAIN_ADDRESS, email) is not None
            and re.search(SPECIAL_USE_ENDING, email) is None)


def _not_plain(dialect: str) -> str:
    plain, special = (regex_match(dialect, "email", placeholder(dialect, name)) for name in ("plain", "special"))
    return f"not (length(email) <= {PLAIN_MAX_LENGTH} and {plain} and not {special})"


def prepare(sql: Statements) -> None:
    sql.execute(f"create schema if not exists {BUILD_SCHEMA}")
    sql.execute(f"create table if not exists {INVALID_EMAILS} ({INVALID_EMAILS_DDL})")


def check_emails(sql: Statements, district_id: str, incremental: bool, enabled: bool = True) -> EmailCheck:
    """Write the district's refused emails to `roster_build.invalid_emails`, in the caller's transaction.

    A full build judges every distinct email of the district's raw students and teachers (the slice is
    rewritten); an incremental one only those of the records it rebuilds (after `mark_affected`), adding
    the refused ones not yet listed: an email's verdict never changes, and a listed email that nobody
    uses any more is harmless until the next full build drops it. `enabled` False (the rules profile's
    `emails.check_syntax = false`) empties the slice: only the patterns decide.
    """
    prepare(sql)
    d = placeholder(sql.dialect, "d")
    params = {"d": district_id, "plain": PLAIN_ADDRESS, "special": SPECIAL_USE_ENDING}
    if not incremental or not enabled:
        sql.execute(f"delete from {INVALID_EMAILS} where district_id = {d}", params)
    if not enabled:
        return EmailCheck(0, 0)
    reads = []
    for table, entity in PEOPLE.items():
        if not table_columns(sql, RAW_DATASET, table):
            continue
        only_changed = (f" and id in (select id from {AFFECTED} where district_id = {d} and entity = '{entity}')"
                        if incremental else "")
        reads.append(f"select nullif(lower(trim(email)), '') as email from {RAW_DATASET}.{table} "
                     f"where district_id = {d}{only_changed}")
    if not reads:
        return EmailCheck(0, 0)
    known = (f" and email not in (select email from {INVALID_EMAILS} where district_id = {d})" if incremental else "")
    emails = [e for (e,) in sql.execute(
        f"select distinct email from ({' union '.join(reads)}) as emails where email is not null "
        f"and {_not_plain(sql.dialect)}{known}", params).fetchall()]
    refused = [(email, problem) for email in emails if (problem := email_problem(email)) is not None]
    if refused:
        sql.execute(f"insert into {INVALID_EMAILS} (district_id, email, reason) "
                    f"select {d}, unnest({placeholder(sql.dialect, 'emails')}), unnest({placeholder(sql.dialect, 'reasons')})",
                    {"d": district_id, "emails": [e for e, _ in refused], "reasons": [r for _, r in refused]})
    if sql.dialect == "postgres" and (refused or not incremental):
        sql.execute(f"analyze {INVALID_EMAILS}")  # a few rows, joined by the classified models: planned right
    return EmailCheck(len(emails), len(refused))


def demographics_shared(sql: Statements, district_id: str) -> bool:
    """False when the district has students and none of them carries a demographic value.

    Absent, null and empty are one case here: dlt's Postgres loader stores an empty string as NULL,
    and both warehouses must decide alike. A district with no students has nothing to say: True.
    """
    columns = table_columns(sql, RAW_DATASET, "students")
    if not columns:
        return True
    present = [f for f in DEMOGRAPHIC_FIELDS if f in columns]
    d = placeholder(sql.dialect, "d")
    carried = " or ".join(f"trim({f}) <> ''" for f in present) or "false"
    any_student, any_value = sql.execute(
        f"select exists (select 1 from {RAW_DATASET}.students where district_id = {d}), "
        f"exists (select 1 from {RAW_DATASET}.students where district_id = {d} and ({carried}))",
        {"d": district_id}).fetchone()
    return bool(any_value) or not any_student


def build_parameters(sql: Statements, district_id: str) -> dict[str, str]:
    """The district's facts the SQL models read as bound parameters, which the build's fingerprint hashes
    (with email-validator's version: an upgrade may judge an unchanged email anew, so the build is full)."""
    return {"demographics_shared": "yes" if demographics_shared(sql, district_id) else "no",
            "email_validator_version": email_validator.__version__}
