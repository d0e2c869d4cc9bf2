"""Words that agree with a person's sex: « né » or « née » (a profession's label: Profession.label_for).

The sex is « F », « M », or unknown (None or ""): unknown keeps the inclusive form."""
from __future__ import annotations


def born(sex: str | None) -> str:
    """« né » for a man, « née » for a woman, « né(e) » when the sex is unknown."""
    return {"F": "née", "M": "né"}.get(sex or "", "né(e)")

