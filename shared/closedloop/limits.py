"""Input limits every service shares: what an id may contain, how large an integer or a metadata object
may be, and text that can be stored and echoed at all.

Each limit exists because something downstream breaks without it:
- a lone UTF-16 surrogate (`"\\ud800"` in JSON) is a valid Python str but cannot be encoded as UTF-8,
  so the database driver or the JSON response fails with a 500 *after* the request was accepted;
- SQLite and PostgreSQL integers are signed 64-bit: a larger `offset` or id overflows in the driver;
- JetStream sequences start at 1 and are unsigned 64-bit;
- an id ends up in URLs, `Location` headers (Latin-1 only), log lines and NATS headers, so it is held
  to a small printable ASCII set (no NUL, no control characters, no spaces, no slashes).
"""

import json
import re
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field

# Signed 64-bit: the largest integer SQLite and PostgreSQL `BIGINT` store.
DB_INT_MAX = 2**63 - 1

# ids a client chooses (customer ids, agent ids, keys): letters, digits and `. _ - : @ +`, starting with a
# letter or digit. Wide enough for e-mail addresses, CRM ids ("crm:1042") and UUIDs.
SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*$"
SAFE_ID_MAX_LENGTH = 200
SAFE_ID_DESCRIPTION = ("Letters, digits and `. _ - : @ +` (starting with a letter or digit), at most "
                       f"{SAFE_ID_MAX_LENGTH} characters.")

SafeId = Annotated[str, Field(min_length=1, max_length=SAFE_ID_MAX_LENGTH, pattern=SAFE_ID_PATTERN,
                              description=SAFE_ID_DESCRIPTION)]
SafeIdPath = Annotated[str, Path(min_length=1, max_length=SAFE_ID_MAX_LENGTH, pattern=SAFE_ID_PATTERN,
                                 description=SAFE_ID_DESCRIPTION, examples=["cust-1042"])]

# ids that come from another system (a review's, a conversation's, an e-mail thread's): any visible ASCII
# character (no space, control or non-ASCII character), so they fit headers, logs and URLs unchanged.
EXTERNAL_REF_PATTERN = r"^[!-~]+$"
EXTERNAL_REF_DESCRIPTION = "Visible ASCII characters (no spaces), as the source system wrote it."


def external_ref(max_length: int = 200) -> Any:
    return Field(min_length=1, max_length=max_length, pattern=EXTERNAL_REF_PATTERN,
                 description=EXTERNAL_REF_DESCRIPTION)


ExternalRef = Annotated[str, external_ref()]

# Every string in a URL path of the /v1 APIs (ids, keys, tokens): URL-unreserved characters and `: @ +`.
# Checked for every route by closedloop.api (and written into each path parameter's schema), so an id
# that could never exist is a 422 naming it instead of a lookup with NUL or a non-Latin-1 character.
PATH_PARAM_PATTERN = r"^[A-Za-z0-9._~:@+\-]+$"
PATH_PARAM_MAX_LENGTH = 500
# A `{name:path}` parameter (a taxonomy path such as `billing/refund`, whose names may be Chinese):
# non-empty segments separated by `/`, no control characters.
MULTI_SEGMENT_PATH_PARAM_PATTERN = r"^[^\x00-\x1f\x7f/]+(/[^\x00-\x1f\x7f/]+)*$"

# Ids of database rows in a path.
DbId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]

# A JetStream stream sequence: 1 is the first message (0 is "none"), kept to the signed range above so
# it also fits every integer type on the way.
SequencePath = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The dead letter's stream sequence.")]

# Free-form metadata a client attaches (e.g. feedback `metadata`): small and shallow, because it is
# stored with every row and travels in events.
METADATA_MAX_BYTES = 16_384
METADATA_MAX_DEPTH = 5
METADATA_MAX_KEYS = 100


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _count_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if _depth(value) > METADATA_MAX_DEPTH:
        raise ValueError(f"nested deeper than {METADATA_MAX_DEPTH} levels")
    if _count_keys(value) > METADATA_MAX_KEYS:
        raise ValueError(f"more than {METADATA_MAX_KEYS} keys in all")
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"{size} bytes as JSON, at most {METADATA_MAX_BYTES}")
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(check_metadata),
                     Field(description=f"Free-form JSON object: at most {METADATA_MAX_BYTES} bytes, "
                                       f"{METADATA_MAX_DEPTH} levels and {METADATA_MAX_KEYS} keys.")]


# --- text that can be stored and sent back --------------------------------------------------------

# An unpaired surrogate cannot be encoded as UTF-8 (json.loads joins a valid pair into one code point, so
# any surrogate left in a str is unpaired); PostgreSQL refuses NUL in text.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
UNSTORABLE_MESSAGE = "contains an unpaired UTF-16 surrogate (e.g. \\ud800) or a NUL character"


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def find_unstorable(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The path to the first string (or key) in parsed JSON that cannot be stored, or None."""
    if isinstance(value, str):
        return None if is_storable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not is_storable(key):
                return (*path, key)
            found = find_unstorable(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unstorable(item, (*path, index))
            if found is not None:
                return found
    return None


def _check_text(value: str) -> str:
    if not is_storable(value):
        raise ValueError(UNSTORABLE_MESSAGE)
    return value


# For text that does not come through a JSON body (which `closedloop.http` already checks as a whole).
SafeText = Annotated[str, AfterValidator(_check_text)]


def path_param_rule(multi_segment: bool) -> tuple[str, str]:
    """(pattern, what it allows in words) for a path parameter; `multi_segment` for `{name:path}` ones."""
    if multi_segment:
        return MULTI_SEGMENT_PATH_PARAM_PATTERN, "non-empty segments separated by /, no control characters"
    return PATH_PARAM_PATTERN, "only letters, digits and . _ ~ : @ + -"


def bad_path_params(path_params: dict[str, Any], multi_segment: frozenset[str] = frozenset()) -> list[str]:
    """Names of the path parameters whose value no id, key or token of ours can have; those named in
    `multi_segment` (declared `{name:path}`) are checked segment by segment instead."""
    def bad(name: str, value: str) -> bool:
        pattern, _ = path_param_rule(name in multi_segment)
        return len(value) > PATH_PARAM_MAX_LENGTH or not re.fullmatch(pattern, value)  # re caches the compile

    return [name for name, value in path_params.items() if isinstance(value, str) and bad(name, value)]


# --- cross-field rules, said in the OpenAPI schema too ------------------------------------------------


def exactly_one_of(*shapes: str | tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema for "send exactly one of these shapes" (e.g. `text` or `items`; `username` and
    `password`, or `login_code`), for a model's `json_schema_extra`: the model validator enforces it,
    the schema tells clients (and schemathesis) before they try."""
    groups = [(shape,) if isinstance(shape, str) else shape for shape in shapes]
    names = sorted({name for group in groups for name in group})
    return {"oneOf": [{
        "required": list(group),
        "properties": {name: {"not": {"type": "null"}} for name in group},
        "not": {"anyOf": [{"required": [other]} for other in names if other not in group]},
    } for group in groups]}
