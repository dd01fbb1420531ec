"""The stored notification templates: Jinja2 per key (event type), channel and language; editable,
previewable, and the shipped ones seeded at start-up. Use cases that own their transactions (ADR 0014);
rendering itself is notify.templating."""

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.api import get_or_404
from closedloop.durations import humanize
from closedloop.errors import ProblemError, conflict, field_problem
from notify import templating
from notify.channels import slack_payload
from notify.default_templates import DEFAULT_TEMPLATES
from notify.models import Template
from notify.schemas.templates import PreviewPublic, TemplateIn
from notify.settings import NotifySettings


def check(body: TemplateIn) -> None:
    try:
        templating.validate(body.channel, body.subject, body.body_text, body.body_html)
    except templating.TemplateInvalid as exc:
        raise field_problem(f"body.{exc.part}", exc.message) from exc
    if body.channel == "slack" and body.body_html is not None:
        raise field_problem("body.body_html", "Slack templates have no HTML body")


async def check_unique(session: AsyncSession, body: TemplateIn, template_id: str | None = None) -> None:
    # Checked before writing: on SQLite a failed INSERT (IntegrityError) can leave the database locked for
    # other connections, so the unique constraint is only the last line of defence.
    existing = await session.scalar(select(Template.id).where(
        Template.key == body.key, Template.channel == body.channel, Template.language == body.language))
    if existing is not None and existing != template_id:
        raise template_exists(body)


def template_exists(body: TemplateIn) -> ProblemError:
    return conflict(f"There is already a {body.channel} template {body.key!r} in {body.language!r}: edit it with PUT.",
                    slug="template-exists", title="Template exists")


async def seed_default_templates(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Insert the shipped templates that are missing (never overwrite an edited one)."""
    async with sessions() as session, session.begin():
        known = {(t.key, t.channel, t.language) for t in await session.scalars(select(Template))}
        now = datetime.now(UTC)
        missing = [t for t in DEFAULT_TEMPLATES if (t.key, t.channel, t.language) not in known]
        for shipped in missing:
            session.add(Template(id=str(uuid4()), key=shipped.key, channel=shipped.channel, language=shipped.language,
                                 subject=shipped.subject, body_text=shipped.body_text, body_html=shipped.body_html,
                                 builtin=True, created_at=now, updated_at=now))
    return len(missing)


async def create_template(session: AsyncSession, body: TemplateIn) -> Template:
    check(body)
    try:
        async with session.begin():
            await check_unique(session, body)
            now = datetime.now(UTC)
            template = Template(id=str(uuid4()), **body.model_dump(), builtin=False, created_at=now, updated_at=now)
            session.add(template)
    except IntegrityError:
        raise template_exists(body) from None
    return template


async def list_templates(session: AsyncSession, key: str | None, channel: str | None,
                         language: str | None) -> list[Template]:
    query = select(Template).order_by(Template.key, Template.channel, Template.language)
    if key:
        query = query.where(Template.key == key)
    if channel:
        query = query.where(Template.channel == channel)
    if language:
        query = query.where(Template.language == language.lower())
    return list(await session.scalars(query))


async def replace_template(session: AsyncSession, template_id: str, body: TemplateIn) -> Template:
    try:
        async with session.begin():
            template = await get_or_404(session, Template, template_id, "Template")
            check(body)
            await check_unique(session, body, template_id)
            for name, value in body.model_dump().items():
                setattr(template, name, value)
            template.updated_at = datetime.now(UTC)
    except IntegrityError:
        raise template_exists(body) from None
    return template


async def delete_template(session: AsyncSession, template_id: str) -> None:
    async with session.begin():
        await session.delete(await get_or_404(session, Template, template_id, "Template"))


def preview(settings: NotifySettings, key: str, channel: str, language: str, subject: str | None, body_text: str,
            body_html: str | None, data: dict[str, Any]) -> PreviewPublic:
    """The template rendered with the sample event of its key, `data` merged over the sample data."""
    event = templating.sample_event(key)
    context = templating.build_context(event, settings, "recipient@example.com")
    delta = context.pop("_expected_response_delta", None)
    context["expected_response"] = humanize(delta, language) if delta else None
    context["language"] = language
    context = templating.merge(context, data)
    try:
        subject_out, text, html = templating.render_parts(subject, body_text, body_html, context)
    except templating.TemplateInvalid as exc:
        raise field_problem(f"body.{exc.part}", exc.message) from exc
    return PreviewPublic(language=language, subject=subject_out if channel == "email" else None, text=text, html=html,
                         slack=json.loads(slack_payload(text)) if channel == "slack" else None, context=context)


async def preview_stored(session: AsyncSession, settings: NotifySettings, template_id: str,
                         data: dict[str, Any]) -> PreviewPublic:
    template = await get_or_404(session, Template, template_id, "Template")
    return preview(settings, template.key, template.channel, template.language, template.subject, template.body_text,
                   template.body_html, data)
