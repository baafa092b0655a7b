"""What a transition check answers: the frames it found, or why it found none."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Frames [start, end) of a transition (start == end for a hard cut), or, when
    `rejected` is set, the reason there is none (kept for tests and debugging)."""

    start: int = 0
    end: int = 0
    rejected: str = ""

    @property
    def found(self) -> bool:
        return not self.rejected

    @classmethod
    def no(cls, reason: str) -> Verdict:
        return cls(rejected=reason)
