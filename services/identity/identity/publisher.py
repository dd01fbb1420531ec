"""Writes the API-key and signing-key documents to the IDENTITY bucket for every service to read.

The database is the truth; the bucket is a copy that converges: written right after each change
(`poke`) and again every `publish_interval_seconds`, so a write lost while NATS was down is repaired.
Identity also loads the documents into its own credential store at once, so a key it has just
created works on its own admin API without waiting for the bucket.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from nats.js.api import KeyValueConfig, StorageType

from closedloop.credentials import API_KEYS_ENTRY, BUCKET, JWKS_ENTRY, CredentialStore
from closedloop.worker import BackgroundWorker
from identity.keys import api_keys_document
from identity.settings import IdentitySettings
from identity.signing import jwks_document, maintain_keys

log = logging.getLogger(__name__)


class CredentialPublisher(BackgroundWorker):
    name = "credential-publisher"

    def __init__(self, settings: IdentitySettings, sessions: Any, broker: Any, store: CredentialStore) -> None:
        self.settings, self.sessions, self.broker, self.store = settings, sessions, broker, store
        self._kv: Any = None

    def between_passes(self) -> float:
        return self.settings.publish_interval_seconds

    async def changed(self) -> None:
        """After a key was created, rotated or revoked: this service knows at once, the others within
        about a second (the bucket is written in the background, and retried while NATS is away)."""
        documents = await self.documents()
        self.store.load_api_keys(documents[API_KEYS_ENTRY])
        self.store.load_jwks(documents[JWKS_ENTRY])
        self.wake()

    async def documents(self) -> dict[str, dict[str, Any]]:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            await maintain_keys(session, self.settings, now)  # a new or retired signing key commits with the read
            return {API_KEYS_ENTRY: await api_keys_document(session, now), JWKS_ENTRY: await jwks_document(session)}

    async def publish_once(self) -> None:
        documents = await self.documents()
        self.store.load_api_keys(documents[API_KEYS_ENTRY])
        self.store.load_jwks(documents[JWKS_ENTRY])
        if not self.broker.is_connected:
            return
        if self._kv is None:
            self._kv = await self.broker.js.create_key_value(KeyValueConfig(
                bucket=BUCKET, history=1, storage=StorageType.FILE, replicas=self.settings.stream_replicas,
                description="API-key hashes and token signing keys, from the identity service"))
        for name, document in documents.items():
            value = json.dumps(document, sort_keys=True).encode()
            try:
                current = (await self._kv.get(name)).value
            except Exception:  # not written yet (KeyNotFoundError)
                current = None
            if current != value:  # compared with the bucket itself, so a lost or stale entry is repaired
                await self._kv.put(name, value)

    async def run_pass(self) -> bool:
        try:
            await self.publish_once()
        except Exception as exc:  # NATS away: a warning, not a stack trace; the next pass reconnects
            self._kv = None
            log.warning("publishing credentials failed; retrying", extra={"error": str(exc)})
        return False
