"""One shape for every list route that pages: `{"items": [...], "total": n, "next_cursor": "..."}`.

Paging is by keyset, never by offset: the cursor is the sort key of the last row of a page, so rows
inserted while a client pages through do not shift later pages (an offset would repeat or skip rows),
and a page costs the same at the end of a long list as at its start. The cursor is opaque to clients
(base64url of a small JSON list); a client passes `next_cursor` back as `cursor` and stops at `null`.
`total` counts the rows matching the filters over all pages, where that count is cheap (an indexed
filter); a route whose count would scan a large table leaves it `null` and says so.

    page = await keyset_page(session, select(Delivery).where(...),
                             order=(Delivery.created_at, Delivery.id), limit=limit, cursor=cursor)
    return DeliveryPage(items=[to_public(d) for d in page.rows], total=page.total,
                        next_cursor=page.next_cursor)

A route that kept an older way of paging (an `offset`, an `after` id) for clients written against it
accepts it as a deprecated query parameter for a deprecation period (docs/operations.md lists them) and
answers in this shape.
"""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from closedloop.errors import FieldError, ProblemError

Item = TypeVar("Item")
Row = TypeVar("Row")

CURSOR_MAX_LENGTH = 1_000
Cursor = Annotated[str | None, Query(max_length=CURSOR_MAX_LENGTH,
                                     description="`next_cursor` of the previous page; omit for the first page.")]


class Page(BaseModel, Generic[Item]):
    """A page of a list. Each list route names its own subclass (`class TicketPage(Page[TicketPublic])`)
    so that the OpenAPI schema has a readable name."""

    items: list[Item]
    total: int | None = Field(description="How many rows match the filters over all pages; null where "
                                          "counting would be expensive.")
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


def invalid_cursor() -> ProblemError:
    return ProblemError(400, "Invalid cursor", "Use the next_cursor of a previous page.", slug="invalid-cursor",
                        errors=[FieldError(field="query.cursor", message="not a cursor from this API")])


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite hands back naive datetimes that were stored as UTC
            return {"t": value.isoformat() + "+00:00"}
        return {"t": value.isoformat()}
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"a cursor cannot hold {type(value).__name__}")


def _typed(value: object) -> object:
    if isinstance(value, dict) and set(value) == {"t"} and isinstance(value["t"], str):
        parsed = datetime.fromisoformat(value["t"])
        if parsed.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return parsed
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise ValueError("not a cursor value")


def encode_cursor(values: Sequence[object]) -> str:
    """The opaque cursor for a row whose sort key is `values` (strings, numbers, datetimes)."""
    text = json.dumps([_plain(value) for value in values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The sort key in a cursor made by `encode_cursor`, or the 400 problem naming `query.cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(values, list) or len(values) != arity:
            raise ValueError("wrong number of values")
        return [_typed(value) for value in values]
    except (ValueError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise invalid_cursor() from None


@dataclass
class KeysetPage(Generic[Row]):
    rows: list[Row]
    total: int | None
    next_cursor: str | None


async def keyset_page(session: AsyncSession, query: Select[tuple[Row]], *,
                      order: Sequence[InstrumentedAttribute[Any]], limit: int, cursor: str | None,
                      descending: bool = True, count: bool = True, offset: int = 0) -> KeysetPage[Row]:
    """One page of `query`'s rows in `order` (every column non-null, the last one unique, e.g. the id),
    newest first unless `descending=False`, starting after the row `cursor` names; `total` counted over
    `query`'s filters when `count`. `offset` skips that many rows when there is no cursor: a route's
    deprecated offset paging, whose page then continues by cursor like any other."""
    total = None
    if count:
        total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    key = tuple_(*order)
    if cursor:
        # Bound with each column's own type, so a datetime compares as the column stores it.
        after = tuple_(*(literal(value, type_=column.type)
                         for value, column in zip(decode_cursor(cursor, len(order)), order, strict=True)))
        query = query.where(key < after if descending else key > after)
    ordering = [column.desc() if descending else column.asc() for column in order]
    query = query.order_by(*ordering)
    if offset and not cursor:
        query = query.offset(offset)
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([getattr(last, column.key) for column in order])
    return KeysetPage(rows=rows[:limit], total=total, next_cursor=next_cursor)
