"""All districts of one sandbox: the generated ones, then any hand-made ones, found by token.

District n of a sandbox has students - n * students / 5 students (so districts differ in size)
unless `equal_sizes`; the districts listed in `share_by_schools` share only some of their schools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from roster_pipeline.sandbox.generated_district import GeneratedDistrict
from roster_pipeline.sandbox.handmade_district import HandmadeDistrict
from roster_pipeline.sandbox.layout import DistrictSpec


@dataclass
class SandboxData:
    """All districts of one sandbox, in serving order and by token."""

    seed: int = 42
    districts: int = 2
    students: int = 2000
    share_by_schools: tuple[int, ...] = field(default=(1,))  # district numbers that Share by Schools
    handmade: list[HandmadeDistrict] = field(default_factory=list)
    equal_sizes: bool = False  # every district as large as the first (a vendor's many similar districts)

    @cached_property
    def specs(self) -> list[GeneratedDistrict | HandmadeDistrict]:
        """Every district served, generated first (by number), then the hand-made ones."""
        generated = [
            GeneratedDistrict(DistrictSpec(
                self.seed, n, self.students if self.equal_sizes else max(1, self.students - n * self.students // 5),
                n in self.share_by_schools))
            for n in range(self.districts)
        ]
        return [*generated, *self.handmade]

    @cached_property
    def by_token(self) -> dict[str, GeneratedDistrict | HandmadeDistrict]:
        return {spec.token: spec for spec in self.specs}
