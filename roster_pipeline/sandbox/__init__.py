"""A Clever-compatible sandbox: seeded synthetic districts served over HTTP, for tests, demos and benchmarks.

Where things are:
- `ids.py`: kind codes and how an id encodes (district, kind, index).
- `layout.py`: a district's frozen spec and layout (sizes, cohorts, schools, sections, teaching loads).
- `names.py`, `people.py`, `schools_and_sections.py`: the generated Clever objects.
- `dirty_values.py`: the deliberately dirty grades, birth dates and emails, and their rates.
- `generated_district.py`: a generated district as served today (spec + simulated days' changes).
- `school_days.py`: what changes a district between syncs (a school day, a sharing change, Clever's pause,
  a new school year, a re-issued id); `event_log.py`: the Clever events for them.
- `paging.py`: pages and cursors; `handmade_district.py`: a district given object by object.
- `districts.py`: all districts of one sandbox; `server.py` (with `faults.py`, `rate_limit.py`): HTTP.
"""
