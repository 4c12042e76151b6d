"""The family plan: goals, and reviews that scale them 0-10 every 6 to 12 weeks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import ProblemItem, ValidationFailed
from app.models.base import shown_as
from app.models.plan import (
    Goal,
    GoalCreate,
    GoalRead,
    OutcomeCategory,
    RespondentScores,
    Review,
    ReviewCreate,
    ReviewRead,
    ReviewScore,
    ScoreRead,
)
from app.services import case_records, reference

# --- outcome categories ------------------------------------------------------------------


async def categories(session: AsyncSession, las: Iterable[str]) -> list[OutcomeCategory]:
    """The national outcome categories and those of the given LAs."""
    return await reference.visible(session, OutcomeCategory, las)


# --- goals -------------------------------------------------------------------------------


async def add_goal(auditor: Auditor, case_id: uuid.UUID, new: GoalCreate) -> GoalRead:
    work = await case_records.begin(auditor, case_id, child_ids=[new.child_id])
    category = await reference.find(
        work.session, OutcomeCategory, work.case.la_code, new.outcome_category
    )
    if category is None or not category.active:
        raise ValidationFailed(
            "Unknown outcome category.",
            errors=[
                ProblemItem(
                    loc=["body", "outcome_category"],
                    detail=f"unknown outcome category {new.outcome_category!r}",
                )
            ],
        )
    goal = Goal(
        case_id=work.case.id,
        title=new.title,
        outcome_category=new.outcome_category,
        child_id=new.child_id,
        owner=new.owner,
        due=new.due,
        created_by=work.by,
    )
    await case_records.add(
        work,
        goal,
        event="goal.added",
        summary=f"Goal added ({category.label}): {new.title}",
        details={"goal_id": str(goal.id)},
        action="goal.create",
    )
    return (await present_goals(work.session, [goal]))[0]


async def goals(auditor: Auditor, case_id: uuid.UUID) -> list[GoalRead]:
    rows = await case_records.records(auditor, case_id, Goal, col(Goal.id), action="goal.list")
    return await present_goals(auditor.session, rows)


@dataclass(frozen=True)
class Scored:
    score: int
    held_on: date


async def score_history(
    session: AsyncSession, goal_ids: Sequence[uuid.UUID], until: date | None = None
) -> dict[uuid.UUID, list[Scored]]:
    """Each goal's scores in review order (held_on, then when recorded), up to `until`."""
    found: dict[uuid.UUID, list[Scored]] = {g: [] for g in goal_ids}
    if not goal_ids:
        return found
    query = (
        select(col(ReviewScore.goal_id), col(ReviewScore.score), col(Review.held_on))
        .join(Review, col(Review.id) == ReviewScore.review_id)
        .where(col(ReviewScore.goal_id).in_(list(goal_ids)))
    )
    if until is not None:
        query = query.where(col(Review.held_on) <= until)
    for goal_id, score, held_on in await session.exec(
        query.order_by(col(Review.held_on), col(Review.id))
    ):
        found[goal_id].append(Scored(score, held_on))
    return found


async def present_goals(session: AsyncSession, rows: Sequence[Goal]) -> list[GoalRead]:
    history = await score_history(session, [g.id for g in rows])
    return [
        shown_as(
            GoalRead,
            g,
            first_score=history[g.id][0].score if history[g.id] else None,
            latest_score=history[g.id][-1].score if history[g.id] else None,
        )
        for g in rows
    ]


# --- reviews -----------------------------------------------------------------------------


async def hold_review(auditor: Auditor, case_id: uuid.UUID, new: ReviewCreate) -> ReviewRead:
    work = await case_records.begin(auditor, case_id, dated=("held_on", new.held_on))
    own = set((await work.session.exec(select(Goal.id).where(Goal.case_id == work.case.id))).all())
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(new.scores):
        problem = None
        if item.goal_id not in own:
            problem = "not a goal of this case"
        elif item.goal_id in seen:
            problem = "this goal is scored twice"
        if problem:
            raise ValidationFailed(
                "The scores do not fit the case's goals.",
                errors=[ProblemItem(loc=["body", "scores", index, "goal_id"], detail=problem)],
            )
        seen.add(item.goal_id)
    review = Review(
        case_id=work.case.id,
        held_on=new.held_on,
        worries=new.worries,
        working_well=new.working_well,
        next_steps=new.next_steps,
        created_by=work.by,
    )
    scores = [
        ReviewScore(
            review_id=review.id,
            goal_id=item.goal_id,
            score=item.score,
            respondent_scores=(item.respondent_scores or RespondentScores()).model_dump(),
        )
        for item in new.scores
    ]
    await case_records.add(
        work,
        review,
        also=scores,
        event="review.held",
        summary=f"Review held on {new.held_on.isoformat()} ({len(new.scores)} goal(s) scaled)",
        details={"review_id": str(review.id)},
        action="review.create",
    )
    return (await present_reviews(work.session, [review]))[0]


async def reviews(auditor: Auditor, case_id: uuid.UUID) -> list[ReviewRead]:
    rows = await case_records.records(
        auditor, case_id, Review, col(Review.held_on), col(Review.id), action="review.list"
    )
    return await present_reviews(auditor.session, rows)


async def present_reviews(session: AsyncSession, rows: Sequence[Review]) -> list[ReviewRead]:
    scores: dict[uuid.UUID, list[ReviewScore]] = {r.id: [] for r in rows}
    if rows:
        for score in await session.exec(
            select(ReviewScore)
            .where(col(ReviewScore.review_id).in_(list(scores)))
            .order_by(col(ReviewScore.id))
        ):
            scores[score.review_id].append(score)
    return [
        shown_as(
            ReviewRead,
            r,
            scores=[ScoreRead.model_validate(s, from_attributes=True) for s in scores[r.id]],
        )
        for r in rows
    ]
