"""One metric value with the reason it is missing or the caveat that comes with it.

Why not a bare float: the official scripts crash (`sqrtm` on a 1-image covariance) or print a number that means
nothing (P-IDS = 0 when the SVM separates 10 images in 2048 dimensions). Here a metric that cannot be computed is
`value=None` with a `note` saying why, and a number that is computed but uninformative keeps its note.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Score:
    value: float | None  # None: not computable from these inputs (the note says why)
    note: str = ""  # why the value is None, or a caveat that applies to it; "" when there is none

    def as_dict(self) -> dict:
        return {"value": self.value, "note": self.note}
