"""arXiv categories (`categories:`, e.g. cs.RO or cs.*): the picks other than followed authors and
`always` come only from those categories. A paper without categories (the Daily Papers dumps) is
judged by its content alone."""

from __future__ import annotations

import numpy as np

from .base import Reader, Signal


class Categories(Signal):
    def __init__(self, reader: Reader):
        wanted = [c.strip().casefold() for c in reader.subscriber.categories]  # "cs.ro" is cs.RO
        exact = {c for c in wanted if not c.endswith(".*")}
        groups = tuple(c[:-1] for c in wanted if c.endswith(".*"))  # "cs.*" -> "cs."
        def wanted_one(category: str) -> bool:
            category = category.casefold()
            return category in exact or category.startswith(groups) or category.split(".")[0] in exact

        papers = reader.features.papers
        self.allowed = np.array([not p.categories or any(map(wanted_one, p.categories)) for p in papers])

    @classmethod
    def of(cls, reader: Reader) -> Categories | None:
        return cls(reader) if reader.subscriber.categories else None

    def restrict(self) -> np.ndarray:
        return self.allowed
