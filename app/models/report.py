"""Reports for the people who fund early help."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class OutcomeRow(BaseModel):
    category: str
    label: str
    counts: list[int] = Field(description="Goals per band, 10% to 100%.")


class OutcomeReport(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    bands: list[int]
    rows: list[OutcomeRow]
    positive_impacts: int = Field(description="Goals whose latest score is above their first.")
    families: int = Field(description="Cases open at some time in the period.")
    too_early_to_scale: int = Field(description="Cases in scope with no scored review yet.")

    model_config = {"populate_by_name": True}
