"""Signing keys of an outside identity provider, as PEMs and as the JWKs it publishes."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk


def pems(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, bytes]:
    """The key's private PEM (PKCS#8, to sign with) and its public PEM (to publish)."""
    private = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def public_jwk(public_pem: bytes, algorithm: str, kid: str, **extra: Any) -> dict[str, Any]:
    """The public key as a JWK with its `kid` (and any other members given)."""
    key = jwk.construct(public_pem, algorithm).to_dict()
    key.update(kid=kid, **extra)
    return {k: v for k, v in key.items() if v is not None}
