"""Secrets at rest: what a service must be able to read back (webhook signing secrets, Slack hook URLs,
token signing keys) is stored sealed, never in clear.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a keyring: `<PREFIX>SECRET_KEYS` is a
comma-separated list of Fernet keys (`python -m closedloop.secretbox new-key`), the first seals, every
one opens. Rotation: put a new key first, restart (each service re-seals its rows under the first key at
start-up, `reseal`), then drop the old key. A sealed value is `enc:v1:<token>`; a value without the prefix
is a row written before encryption existed and is sealed by that same start-up pass.

Development mode (`make run`, the tests) without keys uses a fixed, publicly known development key, so a
local database survives restarts; production without keys refuses to start (`KeyringMissing`).
"""

import base64
import hashlib
import sys
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc:v1:"
# Derived from a public string: protects nothing, and only development mode accepts it.
DEVELOPMENT_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"closedloop development secret key").digest()).decode()


class KeyringMissing(RuntimeError):
    pass


class SecretUnreadable(ValueError):
    """Sealed under a key that is no longer in the keyring (or tampered with)."""


class Keyring:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise KeyringMissing("no secret keys")
        self._fernets = [Fernet(key.encode()) for key in keys]
        self._multi = MultiFernet(self._fernets)

    @classmethod
    def from_settings(cls, settings) -> "Keyring":  # type: ignore[no-untyped-def]
        keys = list(settings.secret_keys)
        if not keys:
            if settings.environment != "development":
                raise KeyringMissing(
                    f"{settings.service_name}: set {settings.model_config.get('env_prefix', '')}SECRET_KEYS "
                    "(comma-separated Fernet keys; `python -m closedloop.secretbox new-key` makes one): "
                    "it encrypts the secrets this service stores")
            keys = [DEVELOPMENT_KEY]
        return cls(keys)

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernets[0].encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored  # written before encryption: readable until the start-up pass seals it
        try:
            return self._multi.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("sealed under a key not in the keyring") from exc

    def reseal(self, stored: str) -> str | None:
        """The value sealed under the first key, or None when it already is."""
        if is_sealed(stored):
            token = stored[len(PREFIX):].encode()
            try:
                self._fernets[0].decrypt(token)
                return None
            except InvalidToken:
                pass
        return self.seal(self.open(stored))

    def reseal_attribute(self, rows: Iterable[object], attribute: str) -> int:
        """Re-seal `attribute` of each row under the first key (skipping None); how many changed.
        The start-up pass of every service that stores sealed values."""
        changed = 0
        for row in rows:
            stored = getattr(row, attribute)
            resealed = None if stored is None else self.reseal(stored)
            if resealed is not None:
                setattr(row, attribute, resealed)
                changed += 1
        return changed


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def fingerprint(secret: str) -> str:
    """A stable, non-secret name for a secret (e.g. a Slack hook URL, whose random path is the credential):
    the same secret always gets the same name, which reveals nothing of it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:20]


if __name__ == "__main__":
    if sys.argv[1:] == ["new-key"]:
        print(Fernet.generate_key().decode())
    else:
        print("usage: python -m closedloop.secretbox new-key")
        sys.exit(2)
