"""E-mail over STARTTLS with SMTP AUTH against a real aiosmtpd server that requires both."""

import shutil
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from closedloop.devtools.nats_server import free_port
from closedloop.events import CustomerRef, TicketCreatedV1
from closedloop.testing import eventually, running_app

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a test cert")


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_smtp(smtp_server, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[str, bool]] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"notify", b"s3cret")
        logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?", ok))
        return AuthResult(success=True) if ok else AuthResult(success=False, handled=False,
                                                             message="535 5.7.8 Authentication credentials invalid")

    controller = Controller(smtp_server, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, auth_required=True, authenticator=authenticate)
    controller.start()
    smtp_server.port, smtp_server.logins, smtp_server.cert = controller.port, logins, str(cert)
    yield smtp_server
    controller.stop()


async def test_email_over_starttls_with_auth(make_app, tls_smtp, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=tls_smtp.port, smtp_security="starttls",
                   smtp_username="notify", smtp_password="s3cret", smtp_ca_file=tls_smtp.cert)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        customer = CustomerRef(id="c-11", email="tls@example.com")
        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot(customer=customer)))
        await eventually(notify_kit.where(client, status="delivered"), timeout=15)
        assert len(tls_smtp.to("tls@example.com")) == 1
        assert tls_smtp.logins == [("notify", True)]


async def test_wrong_password_is_a_permanent_failure(make_app, tls_smtp, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=tls_smtp.port, smtp_security="starttls",
                   smtp_username="notify", smtp_password="wrong", smtp_ca_file=tls_smtp.cert, smtp_timeout_seconds=3)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        customer = CustomerRef(id="c-12", email="tls@example.com")
        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot(customer=customer)))
        [failed] = await eventually(notify_kit.where(client, status="failed"), timeout=15)
        assert failed["last_status_code"] == 535 and failed["attempts"] == 1
        assert tls_smtp.messages == []
