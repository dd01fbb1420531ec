"""Service processes for local runs and end-to-end tests: each service in its own uvicorn process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

# identity first: the others read the API keys and signing keys it publishes. The console (the
# people's UI over their APIs) is started after them.
SERVICES = ("identity", "ingest", "classify", "ticketing", "notify")
CONSOLE = "console"
# The read model beside the pipeline: it only listens to the streams (and answers the console), so the
# pipeline's end-to-end tests run without it; `make run` starts it after the pipeline.
INSIGHTS = "insights"
# The services that hold customer data and erase it on `customer.erasure_requested.v1` (each calls
# closedloop.erasure.subscribe_erasure): what ingest's erasure waits for. Identity holds none.
ERASING_SERVICES = ("ingest", "classify", "ticketing", "notify", INSIGHTS)


class ServiceProcess:
    def __init__(self, name: str, port: int, env: dict[str, str], log_file: Path) -> None:
        self.name = name
        self.port = port
        self.env = env
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServiceProcess":
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", f"{self.name}.main:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
             "--timeout-graceful-shutdown", "20"],
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 120.0, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_file}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout}s; see {self.log_file}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (fault tests)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as Kubernetes does: stop taking requests, finish work in hand, exit."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def service_env(name: str, *, database_url: str, nats_url: str, api_key: str,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    prefix = name.upper() + "_"
    env = {
        prefix + "DATABASE_URL": database_url,
        prefix + "NATS_URL": nats_url,
        prefix + "API_KEYS": api_key,
        # Local runs and end-to-end tests: the development key is accepted (production refuses it).
        "CLOSEDLOOP_ENVIRONMENT": "development",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.update(extra or {})
    return env


def console_env(*, database_url: str, nats_url: str, api_key: str, urls: dict[str, str],
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The console's environment: its own database and NATS, and where the services' APIs answer."""
    env = service_env(CONSOLE, database_url=database_url, nats_url=nats_url, api_key=api_key, extra=extra)
    env["CONSOLE_SERVICE_API_KEY"] = api_key
    env.update({f"CONSOLE_{name.upper()}_URL": url for name, url in urls.items()})
    return env
