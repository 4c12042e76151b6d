"""Settings, read from `LIAISON_*` environment variables and an optional `.env` file."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Only ever used outside production; `Settings` refuses it when environment=production.
DEVELOPMENT_SIGNING_KEY = "liaison-development-signing-key-do-not-use-in-production"
MIN_SIGNING_KEY_BYTES = 32
# The largest document accepted unless LIAISON_DOCUMENT_MAX_BYTES says otherwise.
DEFAULT_DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
EXTERNAL_SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIAISON_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///./liaison.db"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    db_command_timeout_seconds: float = Field(default=60.0, gt=0)

    token_issuer: str = "urn:liaison"
    token_audience: str = "liaison-api"
    token_lifetime_seconds: int = Field(default=900, ge=60, le=86_400)
    # The current key signs; previous keys still verify, so keys rotate without cutting
    # off tokens already issued.
    signing_key: SecretStr = SecretStr(DEVELOPMENT_SIGNING_KEY)
    previous_signing_keys: list[SecretStr] = Field(default_factory=list)

    # An optional external identity provider (the LA's IdP) whose tokens are accepted
    # for staff, verified against its JWKS and mapped onto staff accounts.
    external_issuer: str | None = None
    external_jwks_url: str | None = None
    external_audience: str | None = None
    external_algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    external_subject_claim: str = "sub"
    jwks_cache_seconds: int = Field(default=600, ge=10)

    # Failed client-secret and password checks the token endpoint allows, as `limits` rate
    # strings ("N per P unit", several joined by ";"), per client id or username and per
    # client address. The short window stops bursts; the daily one bounds a slow guesser.
    token_identity_limits: str = "10 per 15 minutes; 100 per day"
    token_address_limits: str = "50 per 15 minutes; 1000 per day"

    # The API docs' public client (RFC 6749 §2.1): Swagger UI may send this client id with no
    # secret, on the password grant only. Empty to register none.
    docs_client_id: str = Field(default="liaison-docs", max_length=64, pattern=r"^[!-~]*$")

    # The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips): comma-separated addresses or networks, or "*" for any. The
    # client address they give is what the token endpoint counts failures by.
    forwarded_allow_ips: str = "127.0.0.1,::1"

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    page_max_limit: int = Field(default=200, ge=1, le=1000)
    roster_max_pupils: int = Field(default=20_000, ge=1)
    idempotency_hours: int = Field(default=24, ge=1, le=24 * 30)

    # Attendance ingestion and the absence flags it keeps up to date.
    attendance_max_marks: int = Field(default=50_000, ge=1)
    # Persistent and severe absence are judged only once a pupil has this many possible
    # sessions in the academic year, so two missed sessions in September raise nothing.
    flag_min_sessions: int = Field(default=20, ge=1)
    unexplained_run_sessions: int = Field(default=3, ge=1, le=100)
    # Sharp decline: the last `sharp_decline_weeks` weeks' attendance is at least this many
    # percentage points below the pupil's own rate earlier in the year.
    sharp_decline_points: float = Field(default=15.0, gt=0, le=100)
    sharp_decline_weeks: int = Field(default=4, ge=1, le=12)
    sharp_decline_min_sessions: int = Field(default=20, ge=1)
    # Family plans are reviewed every 6 to 12 weeks.
    review_interval_weeks: int = Field(default=6, ge=6, le=12)
    # A JSON file overriding the retention schedule's default periods
    # (`app/services/retention_schedule.py`); checked when a retention command starts.
    retention_schedule: str | None = None

    # Webhook delivery (docs/webhooks.md).
    # Delivery runs inside `liaison serve` unless this is off (then run `liaison deliver`).
    webhook_worker_in_serve: bool = True
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Sends in flight at once to one subscription, per worker, so a slow receiver never
    # holds up the others.
    webhook_concurrency_per_subscription: int = Field(default=4, ge=1, le=64)
    # Tries back off exponentially with jitter over about this long, then the delivery fails.
    webhook_retry_hours: float = Field(default=72.0, gt=0, le=24 * 14)
    # A subscription whose every try has failed for this long is disabled.
    webhook_disable_after_hours: float = Field(default=72.0, gt=0, le=24 * 30)
    # A rotated secret keeps signing beside the new one for this long.
    webhook_secret_grace_hours: float = Field(default=24.0, ge=0, le=24 * 30)
    # Events are kept (for replay) this long after they were fanned out, then pruned.
    webhook_event_keep_days: int = Field(default=30, ge=1, le=365)
    # Addresses or networks (CIDR) that webhook URLs may resolve to although they are
    # loopback, private, link-local or a metadata range; empty refuses them all.
    webhook_allowed_networks: list[str] = Field(default_factory=list)
    # A key for encrypting signing secrets at rest; derived from the signing key if unset.
    webhook_secret_key: SecretStr | None = None

    # Documents on cases (docs/casework.md, "Documents"): where their bytes are kept, and the
    # largest one accepted. `filesystem` keeps them under `document_dir`; `s3` in a bucket
    # of any S3-compatible store (AWS, MinIO, Ceph...).
    document_store: Literal["filesystem", "s3"] = "filesystem"
    document_dir: str = "./documents"
    document_max_bytes: int = Field(
        default=DEFAULT_DOCUMENT_MAX_BYTES, ge=1024, le=512 * 1024 * 1024
    )
    document_s3_bucket: str | None = None
    document_s3_prefix: str = Field(default="", max_length=200)
    document_s3_endpoint_url: str | None = None
    document_s3_region: str | None = None
    document_s3_access_key_id: SecretStr | None = None
    document_s3_secret_access_key: SecretStr | None = None

    @field_validator("token_identity_limits", "token_address_limits")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        try:
            limits = parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit such as '10 per 15 minutes; 100 per day'"
            ) from None
        if any(limit.amount < 1 for limit in limits):
            raise ValueError(f"{value!r} allows no attempt at all")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                # As uvicorn reads them: a network has no host bits set (10.1.0.0/16).
                (ipaddress.ip_network if "/" in entry else ipaddress.ip_address)(entry)
            except ValueError:
                # uvicorn would keep it as a literal that matches no address: say so now.
                raise ValueError(
                    f"{entry!r} is not an IP address or network: give addresses or networks "
                    "separated by commas (e.g. 10.0.0.5,10.1.0.0/16), or * for any"
                ) from None
        return ",".join(entries)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or network (CIDR)") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        keys = [self.signing_key, *self.previous_signing_keys]
        if self.environment == "production":
            for key in keys:
                value = key.get_secret_value()
                if value == DEVELOPMENT_SIGNING_KEY or not value:
                    raise ValueError(
                        "LIAISON_SIGNING_KEY must be set to a secret of your own in production"
                    )
                if len(value.encode()) < MIN_SIGNING_KEY_BYTES:
                    raise ValueError(
                        f"signing keys must be at least {MIN_SIGNING_KEY_BYTES} bytes in production"
                    )
        if bool(self.external_issuer) != bool(self.external_jwks_url):
            raise ValueError(
                "LIAISON_EXTERNAL_ISSUER and LIAISON_EXTERNAL_JWKS_URL go together or not at all"
            )
        if self.document_store == "s3" and not self.document_s3_bucket:
            raise ValueError("LIAISON_DOCUMENT_STORE=s3 needs LIAISON_DOCUMENT_S3_BUCKET")
        unsafe = set(self.external_algorithms) - EXTERNAL_SIGNING_ALGORITHMS
        if unsafe:
            # An HMAC algorithm here would let a public JWKS key act as a shared secret.
            raise ValueError(
                f"external_algorithms must be asymmetric signing algorithms, not {sorted(unsafe)}"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_development_key(self) -> bool:
        return self.signing_key.get_secret_value() == DEVELOPMENT_SIGNING_KEY


@lru_cache
def get_settings() -> Settings:
    return Settings()
