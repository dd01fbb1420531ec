"""Offline verification of API keys and people's tokens, from an in-memory copy of what the identity
service publishes (ADR 0003).

The identity service writes two documents into the JetStream key-value bucket `IDENTITY`:
- `api-keys`: every usable API key as {id: {name, scopes, channels, hashes: [{sha256, expires_at}]}}
  (the SHA-256 of each key; the keys themselves are never stored anywhere);
- `jwks`: the public keys that sign people's tokens (a JSON Web Key Set; `kid` picks one).

Every service polls the two entries (a revision check, two small requests per second) and keeps the
last copy it read, so it goes on verifying while the identity service — or NATS — is down. A key
revoked in identity stops working everywhere within about `identity_refresh_seconds`.
"""

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from closedloop.auth import ADMIN, METRICS_READ, Principal, scopes_for_role
from closedloop.config import DEV_API_KEY, ServiceSettings
from closedloop.worker import BackgroundWorker

log = logging.getLogger(__name__)

BUCKET = "IDENTITY"
API_KEYS_ENTRY = "api-keys"
JWKS_ENTRY = "jwks"
TOKEN_ALGORITHMS = ["EdDSA", "RS256", "ES256"]

# clk_<12 hex id>_<secret>: the id finds the record, the hash of the whole key proves it.
API_KEY_PATTERN = re.compile(r"^clk_([0-9a-f]{12})_[A-Za-z0-9_-]{20,}$")


def hash_api_key(key: str) -> str:
    # API keys are 256 random bits, so a fast hash is as safe as a slow KDF here and costs microseconds
    # per request; passwords (chosen by people) get argon2 in the identity service instead.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_id(key: str) -> str | None:
    match = API_KEY_PATTERN.match(key)
    return match.group(1) if match else None


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    scopes: frozenset[str]
    channels: frozenset[str] | None
    hashes: tuple[tuple[str, datetime | None], ...]  # (sha256, valid until); two while a rotation is in grace

    @classmethod
    def from_json(cls, key_id: str, data: dict[str, Any]) -> "ApiKeyRecord":
        channels = data.get("channels")
        return cls(
            id=key_id, name=str(data.get("name", key_id)), scopes=frozenset(data.get("scopes") or ()),
            channels=frozenset(channels) if channels is not None else None,
            hashes=tuple((h["sha256"], datetime.fromisoformat(h["expires_at"]) if h.get("expires_at") else None)
                         for h in data.get("hashes", [])),
        )

    def matches(self, key: str, now: datetime) -> bool:
        digest = hash_api_key(key)
        matched = False
        for stored, until in self.hashes:
            # Every stored hash is compared, so the time taken does not tell which one nearly matched.
            matched |= hmac.compare_digest(digest, stored) and (until is None or until > now)
        return matched


class CredentialStore:
    """The in-memory copy: API-key records and token verification keys."""

    def __init__(self) -> None:
        self.api_keys: dict[str, ApiKeyRecord] = {}
        self.jwks: dict[str, Any] = {}  # kid -> public key object
        self.revisions: dict[str, int] = {}
        self.loaded_at: datetime | None = None

    def load_api_keys(self, document: dict[str, Any]) -> None:
        self.api_keys = {key_id: ApiKeyRecord.from_json(key_id, data)
                         for key_id, data in document.get("keys", {}).items()}
        self.loaded_at = datetime.now(UTC)

    def load_jwks(self, document: dict[str, Any]) -> None:
        keys = {}
        for jwk in document.get("keys", []):
            try:
                keys[jwk["kid"]] = jwt.PyJWK(jwk).key
            except (KeyError, jwt.PyJWTError) as exc:
                log.warning("skipping an unusable signing key", extra={"kid": jwk.get("kid"), "error": str(exc)})
        self.jwks = keys
        self.loaded_at = datetime.now(UTC)


class Authenticator:
    """Turns a credential (API key or token) into a Principal, or None when it is not valid."""

    def __init__(self, settings: ServiceSettings, store: CredentialStore | None = None) -> None:
        self.settings = settings
        self.store = store or CredentialStore()
        self.development = settings.environment == "development"
        # Keys from settings (`<PREFIX>API_KEYS`) are admin keys for bootstrap and break-glass use. The
        # well-known development key is one only in development mode: production refuses it.
        self._static: list[tuple[str, str, frozenset[str]]] = []
        for index, key in enumerate(settings.api_keys):
            if key == DEV_API_KEY and not self.development:
                log.warning("the development API key is configured but refused outside development mode")
                continue
            self._static.append(("dev" if key == DEV_API_KEY else f"static-{index + 1}", hash_api_key(key),
                                 frozenset({ADMIN})))
        # Scrape keys (`<PREFIX>METRICS_KEYS`): they may read /metrics and nothing else (ADR 0003).
        for index, key in enumerate(settings.metrics_keys):
            self._static.append((f"metrics-{index + 1}", hash_api_key(key), frozenset({METRICS_READ})))

    def authenticate(self, credential: str) -> Principal | None:
        if credential.count(".") == 2:
            return self._token_principal(credential)
        key_id = api_key_id(credential)
        if key_id is not None:
            record = self.store.api_keys.get(key_id)
            if record is not None and record.matches(credential, datetime.now(UTC)):
                return Principal(kind="api_key", id=record.id, name=record.name, scopes=record.scopes,
                                 allowed_channels=record.channels)
            return None
        digest = hash_api_key(credential)
        found = None
        for name, stored, scopes in self._static:
            if hmac.compare_digest(digest, stored):
                found = (name, scopes)
        if found is None:
            return None
        name, scopes = found
        label = "development key" if name == "dev" else f"settings key {name}"
        return Principal(kind="api_key", id=name, name=label, scopes=scopes)

    def _token_principal(self, token: str) -> Principal | None:
        try:
            header = jwt.get_unverified_header(token)
            key = self.store.jwks.get(header.get("kid", ""))
            if key is None:
                return None
            claims = jwt.decode(token, key, algorithms=TOKEN_ALGORITHMS, audience=self.settings.token_audience,
                                issuer=self.settings.token_issuer, leeway=self.settings.token_leeway_seconds,
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError:
            return None
        role = str(claims.get("role", ""))
        return Principal(kind="user", id=str(claims["sub"]), name=str(claims.get("name") or claims["sub"]),
                         role=role or None, scopes=scopes_for_role(role),
                         extra={"auth_time": claims.get("auth_time"), "exp": claims.get("exp")})


class CredentialSync(BackgroundWorker):
    """A runtime worker that keeps the store in step with the identity bucket (see the module doc)."""

    name = "credential-sync"

    def __init__(self, broker: Any, store: CredentialStore, interval: float) -> None:
        self.broker, self.store, self.interval = broker, store, interval
        self._kv: Any = None

    def between_passes(self) -> float:
        return float(self.interval)

    async def refresh(self) -> bool:
        """Read both entries once; True when something changed."""
        if self._kv is None:
            self._kv = await self.broker.js.key_value(BUCKET)
        changed = False
        for entry_name, load in ((API_KEYS_ENTRY, self.store.load_api_keys), (JWKS_ENTRY, self.store.load_jwks)):
            try:
                entry = await self._kv.get(entry_name)
            except Exception as exc:  # KeyNotFoundError: identity has not published it yet
                if type(exc).__name__ in ("KeyNotFoundError", "KeyDeletedError"):
                    continue
                raise
            if self.store.revisions.get(entry_name) == entry.revision:
                continue
            load(json.loads(entry.value or b"{}"))
            self.store.revisions[entry_name] = entry.revision
            changed = True
        return changed

    async def run_pass(self) -> bool:
        try:
            if self.broker.is_connected:
                await self.refresh()
        except Exception as exc:
            # Bucket not there yet, NATS away: keep the copy we have and try again (quietly: it is expected
            # while identity or NATS start).
            self._kv = None
            log.debug("credential refresh failed: %s", exc)
        return False
