"""Notification templates: Jinja2 per key (event type), channel and language; editable and previewable."""

import json
from datetime import UTC, datetime
from typing import Annotated
from uuid import uuid4

from fastapi import Query
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import ProblemError, conflict, field_problem, problem_responses
from notify import templating
from notify.api.deps import SettingsDep
from notify.channels import slack_payload
from notify.default_templates import DEFAULT_TEMPLATES
from notify.models import Template
from notify.schemas import PreviewPublic, PreviewRequest, TemplateCreate, TemplatePublic, UnsavedPreviewRequest
from notify.settings import NotifySettings

router = api_router("templates", 400)


def to_public(template: Template) -> TemplatePublic:
    return TemplatePublic.model_validate(template, from_attributes=True)


def check(body: TemplateCreate) -> None:
    try:
        templating.validate(body.channel, body.subject, body.body_text, body.body_html)
    except templating.TemplateInvalid as exc:
        raise field_problem(f"body.{exc.part}", exc.message) from exc
    if body.channel == "slack" and body.body_html is not None:
        raise field_problem("body.body_html", "Slack templates have no HTML body")


async def check_unique(session: AsyncSession, body: TemplateCreate, template_id: str | None = None) -> None:
    # Checked before writing: on SQLite a failed INSERT (IntegrityError) can leave the database locked for
    # other connections, so the unique constraint is only the last line of defence.
    existing = await session.scalar(select(Template.id).where(
        Template.key == body.key, Template.channel == body.channel, Template.language == body.language))
    if existing is not None and existing != template_id:
        raise template_exists(body)


def template_exists(body: TemplateCreate) -> ProblemError:
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


@router.post("/templates", dependencies=needs("config:write"),
             status_code=201, response_model=TemplatePublic, responses=problem_responses(409),
             summary="Add a template for a key, channel and language")
async def create_template(body: TemplateCreate, session: SessionDep) -> TemplatePublic:
    check(body)
    await check_unique(session, body)
    now = datetime.now(UTC)
    template = Template(id=str(uuid4()), **body.model_dump(), builtin=False, created_at=now, updated_at=now)
    session.add(template)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise template_exists(body) from None
    return to_public(template)


@router.get("/templates", dependencies=needs("config:write"),
            response_model=list[TemplatePublic], summary="List templates")
async def list_templates(session: SessionDep, key: str | None = None,
                         channel: Annotated[str | None, Query(pattern="^(email|slack)$")] = None,
                         language: str | None = None) -> list[TemplatePublic]:
    query = select(Template).order_by(Template.key, Template.channel, Template.language)
    if key:
        query = query.where(Template.key == key)
    if channel:
        query = query.where(Template.channel == channel)
    if language:
        query = query.where(Template.language == language.lower())
    return [to_public(t) for t in await session.scalars(query)]


@router.get("/templates/{template_id}", dependencies=needs("config:write"),
            response_model=TemplatePublic, responses=problem_responses(404),
            summary="One template")
async def get_template(template_id: str, session: SessionDep) -> TemplatePublic:
    return to_public(await get_or_404(session, Template, template_id, "Template"))


@router.put("/templates/{template_id}", dependencies=needs("config:write"),
            response_model=TemplatePublic, responses=problem_responses(404, 409),
            summary="Replace a template (shipped ones too)")
async def replace_template(template_id: str, body: TemplateCreate, session: SessionDep) -> TemplatePublic:
    template = await get_or_404(session, Template, template_id, "Template")
    check(body)
    await check_unique(session, body, template_id)
    for name, value in body.model_dump().items():
        setattr(template, name, value)
    template.updated_at = datetime.now(UTC)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise template_exists(body) from None
    return to_public(template)


@router.delete("/templates/{template_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Remove a template (a shipped one comes back at the next start)")
async def delete_template(template_id: str, session: SessionDep) -> None:
    await session.delete(await get_or_404(session, Template, template_id, "Template"))
    await session.commit()


def preview(settings: NotifySettings, key: str, channel: str, language: str, subject: str | None, body_text: str,
            body_html: str | None, data: dict) -> PreviewPublic:
    event = templating.sample_event(key)
    context = templating.build_context(event, settings, "recipient@example.com")
    delta = context.pop("_expected_response_delta", None)
    context["expected_response"] = templating.humanize(delta, language) if delta else None
    context["language"] = language
    context = templating.merge(context, data)
    try:
        subject_out, text, html = templating.render_parts(subject, body_text, body_html, context)
    except templating.TemplateInvalid as exc:
        raise field_problem(f"body.{exc.part}", exc.message) from exc
    return PreviewPublic(language=language, subject=subject_out if channel == "email" else None, text=text, html=html,
                         slack=json.loads(slack_payload(text)) if channel == "slack" else None, context=context)


@router.post("/templates/{template_id}/preview", dependencies=needs("config:write"),
             response_model=PreviewPublic, responses=problem_responses(404),
             summary="Render a stored template with sample data (optionally overridden)")
async def preview_template(template_id: str, session: SessionDep, settings: SettingsDep,
                           body: PreviewRequest | None = None) -> PreviewPublic:
    template = await get_or_404(session, Template, template_id, "Template")
    return preview(settings, template.key, template.channel, template.language, template.subject, template.body_text,
                   template.body_html, (body or PreviewRequest()).data)


@router.post("/templates/preview", dependencies=needs("config:write"), response_model=PreviewPublic,
             summary="Render an unsaved template with sample data, e.g. while editing")
async def preview_unsaved(body: UnsavedPreviewRequest, settings: SettingsDep) -> PreviewPublic:
    check(body)
    return preview(settings, body.key, body.channel, body.language, body.subject, body.body_text, body.body_html,
                   body.data)
