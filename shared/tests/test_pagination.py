"""Keyset paging over a real SQLite database: every row once, in order, whatever is inserted meanwhile."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from closedloop.db import UTCDateTime
from closedloop.errors import ProblemError
from closedloop.pagination import decode_cursor, encode_cursor, keyset_page


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(20))


@pytest.fixture
async def sessions(tmp_path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/notes.db")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


START = datetime(2026, 1, 1, tzinfo=UTC)


async def add_notes(sessions, count, *, first=0, same_time=False):
    async with sessions() as session, session.begin():
        for n in range(first, first + count):
            when = START if same_time else START + timedelta(minutes=n)
            session.add(Note(id=f"n{n:03d}", created_at=when, team="a" if n % 2 else "b"))


async def all_pages(sessions, query, limit, **options):
    seen, cursor, totals = [], None, set()
    while True:
        async with sessions() as session:
            page = await keyset_page(session, query, order=(Note.created_at, Note.id), limit=limit,
                                     cursor=cursor, **options)
        seen += [note.id for note in page.rows]
        totals.add(page.total)
        if page.next_cursor is None:
            return seen, totals
        cursor = page.next_cursor


async def test_every_row_once_newest_first_with_the_total(sessions):
    await add_notes(sessions, 23)
    seen, totals = await all_pages(sessions, select(Note), limit=5)
    assert seen == [f"n{n:03d}" for n in reversed(range(23))]
    assert totals == {23}


async def test_ties_on_time_are_broken_by_the_last_key_and_filters_apply(sessions):
    await add_notes(sessions, 12, same_time=True)
    seen, totals = await all_pages(sessions, select(Note).where(Note.team == "a"), limit=4, descending=False)
    assert seen == [f"n{n:03d}" for n in range(12) if n % 2]
    assert totals == {6}


async def test_rows_added_while_paging_do_not_shift_later_pages(sessions):
    await add_notes(sessions, 10)
    async with sessions() as session:
        first = await keyset_page(session, select(Note), order=(Note.created_at, Note.id), limit=4, cursor=None)
    await add_notes(sessions, 5, first=10)  # newer than every row already seen
    async with sessions() as session:
        second = await keyset_page(session, select(Note), order=(Note.created_at, Note.id), limit=4,
                                   cursor=first.next_cursor, count=False)
    assert [n.id for n in first.rows] == ["n009", "n008", "n007", "n006"]
    assert [n.id for n in second.rows] == ["n005", "n004", "n003", "n002"]
    assert second.total is None


def test_a_cursor_round_trips_and_a_forged_one_is_a_400_naming_the_cursor():
    when = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    assert decode_cursor(encode_cursor([when, "t-1", 7]), 3) == [when, "t-1", 7]
    for forged in ("not base64!", encode_cursor(["only one"]), "W3sidCI6IjIwMjYtMDEtMDEifV0"):
        with pytest.raises(ProblemError) as raised:
            decode_cursor(forged, 2)
        assert raised.value.status == 400
        assert raised.value.errors[0].field == "query.cursor"


async def test_an_offset_skips_rows_without_a_cursor_and_its_page_continues_by_cursor(sessions):
    await add_notes(sessions, 7)
    order = (Note.created_at, Note.id)
    async with sessions() as session:
        skipped = await keyset_page(session, select(Note), order=order, limit=2, cursor=None, offset=3)
        after = await keyset_page(session, select(Note), order=order, limit=2, cursor=skipped.next_cursor,
                                  offset=3)
    assert [n.id for n in skipped.rows] == ["n003", "n002"] and skipped.total == 7
    assert [n.id for n in after.rows] == ["n001", "n000"]  # the offset is ignored once there is a cursor
