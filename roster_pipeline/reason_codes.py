"""The one reason-code vocabulary, read from `dbt_like_sql/seeds/reason_codes.csv`.

SQL models write these codes, pandera checks accept only these, and reports and the data
dictionary explain them with the same words.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from roster_pipeline.sql_models import SQL_DIR

SEEDS_DIR = SQL_DIR / "seeds"


@dataclass(frozen=True)
class ReasonCode:
    code: str
    entity: str
    action: str  # excluded | field_nulled
    meaning: str
    fix: str


def _load() -> dict[str, ReasonCode]:
    with open(SEEDS_DIR / "reason_codes.csv", newline="", encoding="utf-8") as handle:
        return {row["code"]: ReasonCode(**row) for row in csv.DictReader(handle)}


REASON_CODES: dict[str, ReasonCode] = _load()
