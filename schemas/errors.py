"""Typed validation errors: every error names the path and the rule that failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str  # e.g. "body.persons[2].documents[0].issuing_state"
    rule: str  # a short machine-readable rule name, e.g. "iso3166-alpha2"
    message: str  # one sentence for a person

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.rule}]"


class SchemaError(ValueError):
    """A message or document does not conform to the orcon schemas.

    Carries every error found, not only the first, so a sender can fix them all at once.
    """

    def __init__(self, errors: list[FieldError]) -> None:
        if not errors:
            raise ValueError("SchemaError needs at least one FieldError")
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))

    @classmethod
    def single(cls, path: str, rule: str, message: str) -> SchemaError:
        return cls([FieldError(path, rule, message)])
