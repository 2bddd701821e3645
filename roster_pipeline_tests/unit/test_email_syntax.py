"""Which emails the roster step sends to email-validator, and which it may skip (modeling/prepared.py).

The warehouse sets plain addresses aside without asking the library: that is only right if the
library accepts every one of them. Hypothesis draws hundreds each run (special-use names among them);
the warehouse's SQL test and the Python one must agree, and the recorded address must be refused.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roster_pipeline.modeling.prepared import (
    PLAIN_ADDRESS,
    SPECIAL_USE_ENDING,
    _not_plain,
    email_problem,
    is_plain,
)

LOCAL = st.from_regex(r"[a-z0-9_+-]{1,8}(\.[a-z0-9_+-]{1,6}){0,2}", fullmatch=True)
LABEL = st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
TLD = st.one_of(st.from_regex(r"[a-z]{2,6}", fullmatch=True),
                st.sampled_from(["test", "local", "localhost", "invalid", "onion", "arpa", "org", "us"]))


@st.composite
def addresses(draw) -> str:
    return f"{draw(LOCAL)}@{'.'.join(draw(st.lists(LABEL, min_size=1, max_size=3)))}.{draw(TLD)}"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(addresses())
def test_every_plain_address_is_one_the_library_accepts(email):
    if is_plain(email):
        assert email_problem(email) is None, email


@pytest.mark.parametrize("email, plain, valid", [
    ('hauc"k.haylie@example.com', False, False),  # Clever's demo district: passes the default pattern
    ("seth_schoen.example.org", False, False),
    ("jo..smith@school.org", False, False),
    ("ana.lopez@lincoln.k12.us", True, True),
    ("o'brien@school.org", False, True),  # not plain, but an address: the library decides
    ("zoë.núñez@students.lincoln.k12.us", False, True),
    ("kid@school.test", False, False),  # a special-use name no mail goes to
    ("a-b_c+d@sub-1.d2.school.org", True, True),
    ("x" * 60 + "@a.org", False, True),  # longer than the plain limit: judged by the library
])
def test_the_recorded_cases(email, plain, valid):
    assert is_plain(email) is plain
    assert (email_problem(email) is None) is valid


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(addresses(), st.text(max_size=30), st.just('hauc"k.haylie@example.com')), min_size=20,
                max_size=60))
def test_the_warehouse_sets_aside_the_same_emails_as_python(emails):
    with duckdb.connect() as con:
        con.execute("create table emails (email varchar)")
        con.executemany("insert into emails values (?)", [[e] for e in emails])
        judged = {e for (e,) in con.execute(f"select email from emails where {_not_plain('duckdb')}",
                                            {"plain": PLAIN_ADDRESS, "special": SPECIAL_USE_ENDING}).fetchall()}
    assert judged == {e for e in emails if not is_plain(e)}
