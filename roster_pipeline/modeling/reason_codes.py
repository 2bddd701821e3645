"""The one reason-code vocabulary, read from `dbt_like_sql/seeds/reason_codes.csv`.

SQL models write these codes, pandera checks accept only these, and reports and the data
dictionary explain them with the same words. `to_fix_in_sis` sorts a school's page: records
the school must fix lead it, records kept out by design (out of scope) are only counted.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from roster_pipeline.modeling.project import SQL_DIR

SEEDS_DIR = SQL_DIR / "seeds"


@dataclass(frozen=True)
class ReasonCode:
    code: str
    entity: str
    action: str  # excluded | field_nulled | not_linked | link_dropped | notice (about the whole district)
    to_fix_in_sis: bool  # False: not processed by design (out of scope), nothing for the school to fix
    meaning: str
    fix: str


def _load() -> dict[str, ReasonCode]:
    codes = {}
    with open(SEEDS_DIR / "reason_codes.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["to_fix_in_sis"] not in ("yes", "no"):
                raise ValueError(f"reason_codes.csv: to_fix_in_sis of {row['code']} must be yes or no.")
            codes[row["code"]] = ReasonCode(**{**row, "to_fix_in_sis": row["to_fix_in_sis"] == "yes"})
    return codes


REASON_CODES: dict[str, ReasonCode] = _load()
