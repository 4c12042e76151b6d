"""Rate limit counters, kept in the application's own database so that every worker and
every host counts together without another service to run."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class RateLimitCounter(SQLModel, table=True):
    """One fixed window of one limit: `hits` counted until `expires_at`.

    A key names the limit and what it limits (see `app.ratelimit`); identities in it are
    keyed hashes, so the table holds no usernames, client ids or addresses. A row outlives
    its window only until the next hit on its key reuses it or a prune deletes it.
    """

    __tablename__ = "rate_limit_counter"

    key: str = Field(primary_key=True, max_length=255)
    hits: int
    # Seconds since the epoch, as the `limits` library counts time.
    expires_at: float = Field(index=True)
