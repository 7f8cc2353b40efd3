"""Counts of what cleaning removed or changed, so nothing is dropped silently."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CleaningReport:
    """An ordered record of rows removed (or changed) during loading and validation, per reason."""

    source: str
    n_input: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, n: int) -> None:
        """Record that ``n`` rows were removed for ``reason`` (zero counts are kept out)."""
        if n:
            self.removed[reason] = self.removed.get(reason, 0) + int(n)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def n_removed(self) -> int:
        return sum(self.removed.values())

    @property
    def n_output(self) -> int:
        return self.n_input - self.n_removed

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "n_input": self.n_input,
            "n_output": self.n_output,
            "removed": dict(self.removed),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.n_input:,} rows in, {self.n_output:,} kept"]
        lines += [f"  - removed {n:,}: {reason}" for reason, n in self.removed.items()]
        lines += [f"  - note: {n}" for n in self.notes]
        return "\n".join(lines)
