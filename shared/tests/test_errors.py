"""The shared problem helpers: the shapes every service's 404, 409 and one-field 422 answers have."""

import pytest
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.api import get_or_404
from closedloop.db import ServiceBase, create_engine, new_metadata, session_factory
from closedloop.errors import FieldError, NotFound, conflict, field_problem


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


class Thing(Base):
    __tablename__ = "things"
    id: Mapped[str] = mapped_column(String, primary_key=True)


async def test_get_or_404_returns_the_row_or_raises_not_found(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'things.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with session_factory(engine)() as session:
        session.add(Thing(id="a"))
        await session.commit()
        assert (await get_or_404(session, Thing, "a", "Thing")).id == "a"
        with pytest.raises(NotFound) as raised:
            await get_or_404(session, Thing, "b", "Thing")
    await engine.dispose()
    assert (raised.value.status, raised.value.title, raised.value.detail) == (404, "Thing not found",
                                                                              "No thing with id b.")


def test_field_problem_names_the_field():
    problem = field_problem("body.teams", "unknown teams ['x']")
    assert (problem.status, problem.title, problem.slug) == (422, "Request validation failed", "validation-error")
    assert problem.detail == "body.teams: unknown teams ['x']"
    assert problem.errors == [FieldError(field="body.teams", message="unknown teams ['x']")]
    custom = field_problem("path", "cannot remove the last node", detail="Empty.", title="Invalid taxonomy")
    assert (custom.title, custom.detail) == ("Invalid taxonomy", "Empty.")


def test_conflict_with_and_without_a_field():
    plain = conflict("A rebuild is already running.", slug="rebuild-running")
    assert (plain.status, plain.title, plain.slug, plain.errors) == (409, "Conflict", "rebuild-running", None)
    named = conflict("The ticket is closed.", slug="ticket-closed", field="path.token")
    assert named.errors == [FieldError(field="path.token", message="The ticket is closed.")]
