"""The family plan: goals in outcome categories, and reviews that scale each goal 0-10.

Reports read only the agreed `score` of a review; each respondent's own view is kept
beside it for the practitioner.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, Moment, new_id, utcnow
from app.models.referral import Code, Json, LaCodeIn, OwningLa, Text200

LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]
Score = Annotated[int, Field(ge=0, le=10)]


class OutcomeCategory(SQLModel, table=True):
    """A category goals are counted in: national (`la_code` '') or one LA's own."""

    __tablename__ = "outcome_category"

    la_code: str = ColumnField(default="", primary_key=True, max_length=10)
    code: str = ColumnField(primary_key=True, max_length=64)
    label: str = ColumnField(max_length=200)
    active: bool = True
    builtin: bool = False  # seeded by migration, not added by an admin


class Goal(SQLModel, table=True):
    __tablename__ = "goal"
    __table_args__ = (Index("ix_goal_case_id_id", "case_id", "id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    title: str = ColumnField(max_length=300)
    # A code of the national list or of the case's LA (checked when the goal is added).
    outcome_category: str = ColumnField(max_length=64)
    child_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="pupil.id", ondelete="SET NULL"
    )
    owner: str | None = ColumnField(default=None, max_length=200)
    due: date | None = None
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)


class Review(SQLModel, table=True):
    __tablename__ = "review"
    __table_args__ = (Index("ix_review_case_id_held_on", "case_id", "held_on"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    held_on: date
    worries: str = ColumnField(default="", sa_type=Text)
    working_well: str = ColumnField(default="", sa_type=Text)
    next_steps: str = ColumnField(default="", sa_type=Text)
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)


class ReviewScore(SQLModel, table=True):
    __tablename__ = "review_score"
    __table_args__ = (UniqueConstraint("review_id", "goal_id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    review_id: uuid.UUID = ColumnField(foreign_key="review.id", ondelete="CASCADE")
    goal_id: uuid.UUID = ColumnField(foreign_key="goal.id", ondelete="CASCADE", index=True)
    score: int
    respondent_scores: dict[str, Any] = ColumnField(default_factory=dict, sa_type=Json)


# --- API schemas -------------------------------------------------------------------------


class OutcomeCategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    label: str
    active: bool
    la_code: OwningLa


class OutcomeCategoryCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Code
    label: Text200
    la_code: LaCodeIn = None


class OutcomeCategoryList(BaseModel):
    items: list[OutcomeCategoryRead]


class GoalCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    outcome_category: Code
    child_id: uuid.UUID | None = Field(default=None, description="A child on the case.")
    owner: Text200 | None = None
    due: IsoDate | None = None


class GoalRead(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    title: str
    outcome_category: str
    child_id: uuid.UUID | None
    owner: str | None
    due: date | None
    created_at: Moment
    created_by: str
    first_score: int | None
    latest_score: int | None


class GoalList(BaseModel):
    items: list[GoalRead]


class RespondentScores(InputModel):
    model_config = ConfigDict(extra="forbid")

    parent: Score | None = None
    child: Score | None = None
    practitioner: Score | None = None
    school: Score | None = None


class ScoreIn(InputModel):
    model_config = ConfigDict(extra="forbid")

    goal_id: uuid.UUID
    score: Score = Field(description="The whole-number scaling agreed at the review.")
    respondent_scores: RespondentScores | None = None


class ReviewCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    held_on: IsoDate
    worries: LongText = ""
    working_well: LongText = ""
    next_steps: LongText = ""
    scores: list[ScoreIn] = Field(default_factory=list, max_length=100)


class ScoreRead(BaseModel):
    goal_id: uuid.UUID
    score: int
    respondent_scores: RespondentScores


class ReviewRead(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    held_on: date
    worries: str
    working_well: str
    next_steps: str
    scores: list[ScoreRead]
    created_at: Moment
    created_by: str


class ReviewList(BaseModel):
    items: list[ReviewRead]
