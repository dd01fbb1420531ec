"""A real OpenID Connect provider for identity's tests: an HTTP server on a free port with a discovery
document, a JWKS and an authorization-code flow (state, nonce, PKCE S256, a confidential client) that
issues RS256-signed id_tokens, as Keycloak does. Fixtures only (test modules are imported with importlib)."""

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class Person:
    """Who logs in at the provider's login page (the test plays the browser and always says yes)."""

    sub: str
    preferred_username: str
    name: str
    email: str
    roles: list[str]


@dataclass
class FakeProvider:
    client_id: str = "closedloop"
    client_secret: str = "provider-client-secret-0123456789"
    person: Person = field(default_factory=lambda: Person("f3c1-77", "ana.lima", "Ana Lima", "ana@example.com",
                                                          ["closedloop-lead", "offline_access"]))
    # Misbehaviours a test may switch on, to see identity refuse them.
    wrong_nonce: bool = False
    wrong_audience: bool = False
    # Issued to another client too, naming that one as the authorized party.
    foreign_azp: bool = False
    expired: bool = False

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.rotate_key()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/realms/acme/.well-known/openid-configuration":
                    self._json(200, provider.discovery())
                elif url.path == "/realms/acme/protocol/openid-connect/certs":
                    self._json(200, provider.jwks())
                elif url.path == "/realms/acme/protocol/openid-connect/auth":
                    self._authorize(query)
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if urlparse(self.path).path != "/realms/acme/protocol/openid-connect/token":
                    self._json(404, {"error": "not_found"})
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                status, answer = provider.token(form, self.headers.get("Authorization", ""))
                self._json(status, answer)

            def _authorize(self, query: dict[str, str]) -> None:
                problem = provider.check_authorization_request(query)
                if problem:
                    self._json(400, {"error": problem})
                    return
                code = secrets.token_urlsafe(24)
                with provider.lock:
                    provider.codes[code] = {**query, "issued": time.time()}
                location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _json(self, status: int, document: Any) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/realms/acme"

    def rotate_key(self) -> None:
        """A new signing key (and kid), as a provider does at its key rotation; the old one is dropped."""
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)

    def discovery(self) -> dict[str, Any]:
        base = f"{self.issuer}/protocol/openid-connect"
        return {"issuer": self.issuer, "authorization_endpoint": f"{base}/auth", "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/certs", "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"], "id_token_signing_alg_values_supported": ["RS256"]}

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def check_authorization_request(self, query: dict[str, str]) -> str | None:
        if query.get("response_type") != "code" or query.get("client_id") != self.client_id:
            return "unauthorized_client"
        if "openid" not in query.get("scope", "").split():
            return "invalid_scope"
        if not query.get("state") or not query.get("nonce") or not query.get("redirect_uri"):
            return "invalid_request"
        if query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) < 43:
            return "invalid_request: PKCE S256 required"
        return None

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.token_requests.append(form)
            request = self.codes.pop(form.get("code", ""), None)  # a code works once
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        if request is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != request["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest()) \
            .rstrip(b"=").decode()
        if challenge != request["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time()) - (3600 if self.expired else 0)
        person = self.person
        claims = {"iss": self.issuer, "aud": "someone-else" if self.wrong_audience else self.client_id,
                  "sub": person.sub, "iat": now, "exp": now + 300, "auth_time": now,
                  "nonce": "a-nonce-from-elsewhere" if self.wrong_nonce else request["nonce"],
                  "preferred_username": person.preferred_username, "name": person.name, "email": person.email,
                  "realm_access": {"roles": person.roles}, "azp": self.client_id}
        if self.foreign_azp:
            claims.update(aud=[self.client_id, "another-client"], azp="another-client")
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": id_token}


@pytest.fixture
def oidc_provider():
    provider = FakeProvider()
    provider.thread.start()
    yield provider
    provider.server.shutdown()
    provider.server.server_close()
