"""Dates relative to today, as the service's own clock (UTC) sees them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def today() -> date:
    return datetime.now(UTC).date()


def days_ago(days: int) -> date:
    return today() - timedelta(days=days)
