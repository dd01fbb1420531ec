"""Rebuild the message catalogues: extract every `_()` of the code and templates, write the
Simplified Chinese .po from `zh_Hans.py`, compile it to .mo. Run after changing UI text:

    .venv/bin/python -m console.translations.build            (from services/console)
    .venv/bin/python -m console.translations.build --check    (exit 1 when something is missing or stale)
"""

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

from console.translations.zh_Hans import ZH_HANS

SERVICE_DIR = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PO = HERE / "zh_Hans" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
FIXED_DATE = datetime(2026, 12, 2, tzinfo=UTC)


def extract() -> Catalog:
    with open(SERVICE_DIR / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    catalog = Catalog(project="closedloop-console", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            SERVICE_DIR, method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2)}):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def translated() -> tuple[Catalog, list[str]]:
    source = extract()
    # Fixed dates in the header, so rebuilding unchanged messages gives the same bytes (--check compares them).
    catalog = Catalog(locale="zh_Hans", project="closedloop-console", fuzzy=False, version="1",
                      copyright_holder="Closedloop", msgid_bugs_address="-",
                      creation_date=FIXED_DATE, revision_date=FIXED_DATE,
                      last_translator="Closedloop console", language_team="zh_Hans")
    missing = []
    for message in source:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        text = ZH_HANS.get(key)
        if text is None:
            missing.append(key)
            continue
        if isinstance(message.id, tuple):
            text = text if isinstance(text, tuple) else (text,)
        catalog.add(message.id, text, locations=[])
    return catalog, missing


def render(catalog: Catalog) -> tuple[bytes, bytes]:
    po, mo = io.BytesIO(), io.BytesIO()
    write_po(po, catalog, omit_header=False, no_location=True, sort_output=True, width=120)
    write_mo(mo, catalog)
    return po.getvalue(), mo.getvalue()


def main() -> int:
    catalog, missing = translated()
    if missing:
        print("Untranslated messages (add them to zh_Hans.py):\n  " + "\n  ".join(missing))
        return 1
    po, mo = render(catalog)
    if "--check" in sys.argv:
        stale = not PO.exists() or PO.read_bytes() != po or not MO.exists() or MO.read_bytes() != mo
        print("catalogues are stale: run python -m console.translations.build" if stale else "catalogues up to date")
        return 1 if stale else 0
    PO.parent.mkdir(parents=True, exist_ok=True)
    PO.write_bytes(po)
    MO.write_bytes(mo)
    print(f"wrote {PO} and {MO} ({len(catalog)} messages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
