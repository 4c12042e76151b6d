"""Webhook signing secrets: made, sealed at rest, and the set that signs a message now.

A secret is `whsec_` and 32 random bytes in base64 (the Standard Webhooks form). It is shown
once, when made, and stored encrypted (Fernet) under a key of its own
(`LIAISON_WEBHOOK_SECRET_KEY`) or, if that is unset, one derived from the token signing key,
so a copy of the database alone does not let anyone sign as Liaison.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.models.webhook import WebhookSecret

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _fernet(settings: Settings) -> Fernet:
    if settings.webhook_secret_key is not None:
        material = settings.webhook_secret_key.get_secret_value().encode()
    else:
        material = settings.signing_key.get_secret_value().encode()
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"liaison webhook secrets"
    ).derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


def seal(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def unseal(settings: Settings, sealed: str) -> str | None:
    """The secret, or None when it was sealed under another key (the key changed)."""
    try:
        return _fernet(settings).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


async def signing_secrets(
    session: AsyncSession, settings: Settings, subscription_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[str]]:
    """Each subscription's secrets that sign at `now`: the current one and any rotated one
    still in its grace period, newest first."""
    query = (
        select(WebhookSecret)
        .where(
            col(WebhookSecret.subscription_id).in_(subscription_ids),
            or_(col(WebhookSecret.expires_at).is_(None), col(WebhookSecret.expires_at) > now),
        )
        .order_by(col(WebhookSecret.created_at).desc())
    )
    found: dict[uuid.UUID, list[str]] = {sid: [] for sid in subscription_ids}
    for row in (await session.exec(query)).all():
        secret = unseal(settings, row.secret)
        if secret is not None:
            found[row.subscription_id].append(secret)
    return found
