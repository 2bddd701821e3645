"""The rules profile: which grades, subjects, emails and schools a district's roster keeps.

The bundled `rules_profiles/default.toml` states the contract's default rules; `ROSTER_RULES` points at
another file, whose `[districts."<id>"]` tables override settings for single districts. The SQL
models read the rules as small per-district tables (a grade crosswalk, a subject map, a school
scope) and a few bound parameters, so no rule is hard-coded in SQL.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.settings import ConfigError, validate_district_id
from roster_pipeline.warehouse.connection import placeholder

DEFAULT_RULES_PATH = Path(__file__).parent / "rules_profiles" / "default.toml"
GRADE_REASONS = {code for code in REASON_CODES if code.startswith("GRADE_")}


@dataclass(frozen=True)
class DistrictRules:
    """The effective rules of one district."""

    grade_numbers: dict[str, int]
    grade_exclusions: dict[str, str]
    subjects_keep: tuple[str, ...]
    subject_names: dict[str, str]
    teacher_email_pattern: str
    student_email_pattern: str
    email_syntax_checked: bool  # email-validator's syntax check on top of the patterns (see prepared.py)
    school_scope: tuple[str, ...]

    @property
    def grade_range(self) -> tuple[int, int]:
        return min(self.grade_numbers.values()), max(self.grade_numbers.values())

    def sql_parameters(self) -> dict[str, str]:
        """Scalar rules handed to the SQL models as bound parameters."""
        return {
            "teacher_email_pattern": self.teacher_email_pattern,
            "student_email_pattern": self.student_email_pattern,
            "email_syntax_checked": "yes" if self.email_syntax_checked else "no",
            "school_scope_enabled": "yes" if self.school_scope else "no",
        }


def _merge(base: dict, override: Mapping) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class RulesProfile:
    """A rules file: the shared settings and the per-district overrides."""

    path: Path
    base: dict
    districts: dict[str, dict]

    @classmethod
    def load(cls, path: str | Path | None = None) -> "RulesProfile":
        """Load `path`, else `ROSTER_RULES`, else the bundled default; the file is validated."""
        source = "ROSTER_RULES"
        if path is None:
            path = os.environ.get("ROSTER_RULES") or DEFAULT_RULES_PATH
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source} points at {path}, which does not exist.") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source} file {path} is not valid TOML: {exc}.") from None
        defaults = tomllib.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
        districts = data.pop("districts", {}) or {}
        profile = cls(path, _merge(defaults, data), {
            validate_district_id(d, f"{source} [districts] table"): dict(v) for d, v in districts.items()})
        for district_id in [None, *profile.districts]:
            profile.for_district(district_id)  # fail now, not in the middle of a nightly run
        return profile

    def for_district(self, district_id: str | None) -> DistrictRules:
        settings = _merge(self.base, self.districts.get(district_id or "", {}))
        where = f"{self.path}" + (f" [districts.\"{district_id}\"]" if district_id in self.districts else "")
        unknown_sections = sorted(set(settings) - {"grades", "subjects", "emails", "scope"})
        if unknown_sections:
            raise ConfigError(f"ROSTER_RULES file {where} has unknown sections {unknown_sections} "
                              "(known: grades, subjects, emails, scope).")
        try:
            grades, subjects, emails, scope = (settings[k] for k in ("grades", "subjects", "emails", "scope"))
            numbers = _mapping(grades, "grades.numbers", int)
            exclusions = _mapping(grades, "grades.excluded", str)
            rules = DistrictRules(
                grade_numbers=numbers, grade_exclusions=exclusions,
                subjects_keep=_strings(subjects, "subjects.keep"),
                subject_names={k.lower(): v for k, v in _mapping(subjects, "subjects.names", str).items()},
                teacher_email_pattern=_typed(emails, "emails.teacher_pattern", str),
                student_email_pattern=_typed(emails, "emails.student_pattern", str),
                email_syntax_checked=_typed(emails, "emails.check_syntax", bool),
                school_scope=_strings(scope, "scope.schools"),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"ROSTER_RULES file {where}: {exc.args[0] if exc.args else exc}") from None
        unknown = set(exclusions.values()) - GRADE_REASONS
        if unknown:
            raise ConfigError(f"ROSTER_RULES file {where} uses unknown grade reason codes {sorted(unknown)}.")
        if not numbers:
            raise ConfigError(f"ROSTER_RULES file {where} maps no grade values to numbers.")
        for name in ("teacher_email_pattern", "student_email_pattern"):
            try:
                re.compile(getattr(rules, name).replace("[:space:]", r"\s"))
            except re.error as exc:
                raise ConfigError(f"ROSTER_RULES file {where} has an invalid {name}: {exc}.") from None
        return rules


def _typed(section, name: str, kind: type):
    """One setting of the expected TOML type, or a KeyError/TypeError whose text is the sentence shown."""
    if not isinstance(section, dict):
        raise TypeError(f"[{name.split('.')[0]}] must be a table.")
    key = name.split(".")[-1]
    if key not in section:
        raise KeyError(f"{name} is missing.")
    value = section[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{name} must be a whole number, got {value!r}.")
    if kind is str and not isinstance(value, str):
        raise TypeError(f"{name} must be text in quotes, got {value!r}.")
    if kind is bool and not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, got {value!r}.")
    return value


def _mapping(section, name: str, kind: type) -> dict:
    """A table of `"clever value" = <kind>` entries, each checked."""
    table = section.get(name.split(".")[-1]) if isinstance(section, dict) else None
    if not isinstance(table, dict):
        raise TypeError(f"{name} must be a table like {{ \"value\" = ... }}, got {table!r}.")
    return {str(k): _typed(table, f"{name}.{k}", kind) for k in table}


def _strings(section, name: str) -> tuple[str, ...]:
    """A list of strings (a bare string is refused: it would be read letter by letter)."""
    value = section.get(name.split(".")[-1]) if isinstance(section, dict) else None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{name} must be a list of text values like [\"math\", \"ela\"], got {value!r}.")
    return tuple(value)


RULE_TABLE_DDL = {
    "rules_grades": "district_id varchar, clever_value varchar, grade integer, reason_code varchar",
    "rules_subject_names": "district_id varchar, clever_subject varchar, subject varchar",
    "rules_subjects_kept": "district_id varchar, subject varchar",
    "rules_school_scope": "district_id varchar, school_id varchar",
}


def rule_rows(district_id: str, rules: DistrictRules) -> dict[str, list[tuple]]:
    """The district's rules as rows of the small tables the SQL models join (dbt-style seeds)."""
    grades = [(district_id, value, number, None) for value, number in rules.grade_numbers.items()]
    grades += [(district_id, value, None, reason) for value, reason in rules.grade_exclusions.items()
               if value not in rules.grade_numbers]
    return {
        "rules_grades": grades,
        "rules_subject_names": [(district_id, k, v) for k, v in rules.subject_names.items()],
        "rules_subjects_kept": [(district_id, s) for s in rules.subjects_keep],
        "rules_school_scope": [(district_id, s) for s in rules.school_scope],
    }


def write_rule_tables(sql, schema: str, district_id: str, rules: DistrictRules) -> dict[str, int]:
    """Replace the district's rows in the rule tables (one transaction, via `Statements`)."""
    counts = {}
    for table, rows in rule_rows(district_id, rules).items():
        sql.execute(f"create table if not exists {schema}.{table} ({RULE_TABLE_DDL[table]})")
        sql.execute(f"delete from {schema}.{table} where district_id = {placeholder(sql.dialect, 'd')}",
                    {"d": district_id})
        columns = [c.split()[0] for c in RULE_TABLE_DDL[table].split(", ")]
        markers = ", ".join(placeholder(sql.dialect, c) for c in columns)
        for row in rows:
            sql.execute(f"insert into {schema}.{table} values ({markers})", dict(zip(columns, row)))
        counts[table] = len(rows)
        if sql.dialect == "postgres":
            # A few dozen rows, but unanalyzed Postgres plans the models' joins to them as if each
            # held one row (int_students__classified ran 19 s as nested loops at 1M students).
            sql.execute(f"analyze {schema}.{table}")
    return counts
