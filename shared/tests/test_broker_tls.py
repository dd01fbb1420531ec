"""The broker connects to a NATS that requires a user, a password and TLS (as in the Kubernetes
overlays): a real nats-server with a certificate made here by openssl, JetStream in an account."""

import shutil
import subprocess
from pathlib import Path

import pytest

from closedloop.devtools.nats_server import free_port, nats_server_binary, port_is_open
from closedloop.messaging.broker import Broker

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "tls.key", directory / "tls.csr", directory / "tls.crt"
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-days", "1", "-subj", "/CN=closedloop test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=nats")
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "1", "-extfile", str(ext))
    return ca_crt, crt, key


@pytest.fixture
def secured_nats(tmp_path: Path):  # type: ignore[no-untyped-def]
    ca, crt, key = make_certificates(tmp_path)
    port = free_port()
    config = tmp_path / "nats.conf"
    config.write_text(f"""
listen: 127.0.0.1:{port}
tls {{ cert_file: "{crt}", key_file: "{key}", ca_file: "{ca}" }}
jetstream {{ store_dir: "{tmp_path / 'js'}" }}
accounts {{
  CLOSEDLOOP {{ jetstream: enabled, users: [{{user: ingest, password: right-password}}] }}
}}
""")
    process = subprocess.Popen([nats_server_binary(), "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if port_is_open(port):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        yield f"tls://127.0.0.1:{port}", ca
    finally:
        process.terminate()
        process.wait(10)


async def test_user_password_and_ca_reach_jetstream(secured_nats) -> None:  # type: ignore[no-untyped-def]
    url, ca = secured_nats
    broker = Broker(url, "ingest", user="ingest", password="right-password", tls_ca_file=str(ca))
    broker.start()
    try:
        await broker.wait_connected(15)  # connected over TLS, streams created in the account
        await broker.publish("feedback.received.v1", b"{}", {}, msg_id="tls-test-1")
        assert (await broker.js.stream_info("FEEDBACK")).state.messages == 1
    finally:
        await broker.close()


async def test_wrong_password_or_no_ca_never_connects(secured_nats) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    url, ca = secured_nats
    for broker in (Broker(url, "ingest", user="ingest", password="wrong", tls_ca_file=str(ca)),
                   Broker(url, "ingest", user="ingest", password="right-password")):  # system CAs: untrusted
        broker.start()
        try:
            with pytest.raises(asyncio.TimeoutError):
                await broker.wait_connected(3)
            assert not broker.is_connected
        finally:
            await broker.close()
