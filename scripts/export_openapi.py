"""Write each service's OpenAPI document to docs/openapi/<service>.json (`make openapi`)."""

import importlib
import json
import os
import tempfile
from pathlib import Path

from closedloop.devtools.processes import INSIGHTS, SERVICES

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    # The document is the same in both modes; development needs no secret keys (closedloop.secretbox).
    os.environ.setdefault("CLOSEDLOOP_ENVIRONMENT", "development")
    out = ROOT / "docs" / "openapi"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for service in (*SERVICES, INSIGHTS):
            # Building the app touches no database or broker; the URL only has to be valid.
            os.environ[f"{service.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{scratch}/{service}.db"
            app = importlib.import_module(f"{service}.main").create_app()
            (out / f"{service}.json").write_text(json.dumps(app.openapi(), indent=2) + "\n", encoding="utf-8")
            print(f"wrote {out / (service + '.json')}")


if __name__ == "__main__":
    main()
