"""The names generated districts are made of: people, cities and schools.

Lists of common US first and last names (with the accents and apostrophes real rosters carry),
city and school names; a person's name is picked from them by a hash of the object, so the same
seed names everyone the same way.
"""

from __future__ import annotations

from roster_pipeline.sandbox.layout import DistrictSpec

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Elijah", "Isabella", "Lucas",
    "Mia", "Levi", "Amelia", "Ezra", "Harper", "Luca", "Evelyn", "Asher", "Camila", "James",
    "Sofia", "Leo", "Aria", "Jayden", "Luna", "Santiago", "Layla", "Mohammed", "Zoe", "Wei",
    "Priya", "Kenji", "Fatima", "Dmitri", "Aaliyah", "Diego", "Nia", "Hiroshi", "Maya", "Omar",
    "Chloe", "Andre", "Grace", "Tomás", "Hana", "Kwame", "Ingrid", "Rafael", "Leila", "Sean",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Nguyen", "Kim", "Patel", "Chen", "O'Brien", "Okafor", "Kowalski", "Haddad", "Tanaka",
    "Silva", "Müller", "Novak", "Reyes", "Cohen", "Singh",
]
CITY_NAMES = ["Riverside", "Lakewood", "Fairview", "Madison", "Georgetown", "Springfield", "Clinton", "Salem"]
SCHOOL_NAMES = [
    "Lincoln", "Washington", "Roosevelt", "Jefferson", "Cesar Chavez", "Maya Angelou", "Sequoia",
    "Hillcrest", "Oak Grove", "Bayview", "Sunset", "Mission", "Franklin", "Marshall", "Carver",
]


def person_name(spec: DistrictSpec, kind: str, index: int) -> dict:
    """Clever's name object (first, middle initial, last) for one person of the district."""
    first = FIRST_NAMES[spec.h(kind, index, "first") % len(FIRST_NAMES)]
    last = LAST_NAMES[spec.h(kind, index, "last") % len(LAST_NAMES)]
    middle = FIRST_NAMES[spec.h(kind, index, "middle") % len(FIRST_NAMES)][0]
    return {"first": first, "middle": middle, "last": last}


def city_name(spec: DistrictSpec) -> str:
    return CITY_NAMES[spec.number % len(CITY_NAMES)]
