"""The keys that sign people's tokens, and the tokens themselves.

Ed25519 (JWS `EdDSA`): small keys, fast and deterministic signatures, no parameters to get wrong.
The newest key signs; a key is retired after `signing_key_rotate_hours` and its public half stays
in the JWKS for one token lifetime more (plus leeway), so no valid token ever loses its key.
The private halves are stored sealed (closedloop.secretbox, `IDENTITY_SECRET_KEYS`): a copy of the
database alone cannot sign a token.
"""

import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.secretbox import Keyring
from identity.models import SigningKey, User
from identity.settings import IdentitySettings

ALGORITHM = "EdDSA"


def _new_key(now: datetime, keyring: Keyring) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = f"{now:%Y%m%d}-{secrets.token_hex(6)}"
    jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return SigningKey(kid=kid, algorithm=ALGORITHM, private_pem=keyring.seal(pem), public_jwk=jwk, created_at=now)


async def maintain_keys(session: AsyncSession, settings: IdentitySettings, now: datetime) -> bool:
    """Create the first key, rotate an old one, drop keys no valid token can need. True if anything changed."""
    keys = list(await session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))
    active = [key for key in keys if key.retired_at is None]
    changed = False
    if not active or active[0].created_at <= now - timedelta(hours=settings.signing_key_rotate_hours):
        for key in active:
            key.retired_at = now
        session.add(_new_key(now, Keyring.from_settings(settings)))
        changed = True
    keep_until = timedelta(seconds=settings.token_ttl_seconds + settings.token_leeway_seconds + 60)
    expired = [key.kid for key in keys if key.retired_at is not None and key.retired_at + keep_until < now]
    if expired:
        await session.execute(delete(SigningKey).where(SigningKey.kid.in_(expired)))
        changed = True
    return changed


async def jwks_document(session: AsyncSession) -> dict[str, Any]:
    keys = await session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc()))
    return {"keys": [key.public_jwk for key in keys]}


async def issue_token(session: AsyncSession, settings: IdentitySettings, user: User, now: datetime,
                      auth_time: datetime) -> tuple[str, int]:
    """A signed token for `user`; the services verify it offline with the published public key."""
    key = await session.scalar(select(SigningKey).where(SigningKey.retired_at.is_(None))
                               .order_by(SigningKey.created_at.desc()).limit(1))
    if key is None:  # first start: a key is created in this same transaction
        await maintain_keys(session, settings, now)
        await session.flush()
        key = await session.scalar(select(SigningKey).where(SigningKey.retired_at.is_(None)).limit(1))
    assert key is not None
    ttl = settings.token_ttl_seconds
    claims = {
        "iss": settings.token_issuer, "aud": settings.token_audience, "sub": user.id,
        "name": user.display_name, "role": user.role, "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + ttl, "auth_time": int(auth_time.timestamp()),
        "jti": secrets.token_hex(8),
    }
    pem = Keyring.from_settings(settings).open(key.private_pem)
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": key.kid}), ttl  # type: ignore[arg-type]


async def reseal_keys(session: AsyncSession, keyring: Keyring) -> int:
    """Seal a key stored in clear and re-seal one an older secret key sealed (rotation); at start-up."""
    return keyring.reseal_attribute(await session.scalars(select(SigningKey)), "private_pem")
