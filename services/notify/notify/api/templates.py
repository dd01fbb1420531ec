"""Notification templates over HTTP (the use cases are in notify.templates)."""

from typing import Annotated

from fastapi import Query

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses
from notify import templates
from notify.api.deps import SettingsDep
from notify.models import Template
from notify.schemas.templates import PreviewIn, PreviewPublic, TemplateIn, TemplatePublic, UnsavedPreviewIn

router = api_router("templates", 400)


def to_public(template: Template) -> TemplatePublic:
    return TemplatePublic.model_validate(template, from_attributes=True)


@router.post("/templates", dependencies=needs("config:write"),
             status_code=201, response_model=TemplatePublic, responses=problem_responses(409),
             summary="Add a template for a key, channel and language")
async def create_template(body: TemplateIn, session: SessionDep) -> TemplatePublic:
    return to_public(await templates.create_template(session, body))


@router.get("/templates", dependencies=needs("config:write"),
            response_model=list[TemplatePublic], summary="List templates")
async def list_templates(session: SessionDep, key: str | None = None,
                         channel: Annotated[str | None, Query(pattern="^(email|slack)$")] = None,
                         language: str | None = None) -> list[TemplatePublic]:
    return [to_public(t) for t in await templates.list_templates(session, key, channel, language)]


@router.get("/templates/{template_id}", dependencies=needs("config:write"),
            response_model=TemplatePublic, responses=problem_responses(404),
            summary="One template")
async def get_template(template_id: str, session: SessionDep) -> TemplatePublic:
    return to_public(await get_or_404(session, Template, template_id, "Template"))


@router.put("/templates/{template_id}", dependencies=needs("config:write"),
            response_model=TemplatePublic, responses=problem_responses(404, 409),
            summary="Replace a template (shipped ones too)")
async def replace_template(template_id: str, body: TemplateIn, session: SessionDep) -> TemplatePublic:
    return to_public(await templates.replace_template(session, template_id, body))


@router.delete("/templates/{template_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Remove a template (a shipped one comes back at the next start)")
async def delete_template(template_id: str, session: SessionDep) -> None:
    await templates.delete_template(session, template_id)


@router.post("/templates/{template_id}/preview", dependencies=needs("config:write"),
             response_model=PreviewPublic, responses=problem_responses(404),
             summary="Render a stored template with sample data (optionally overridden)")
async def preview_template(template_id: str, session: SessionDep, settings: SettingsDep,
                           body: PreviewIn | None = None) -> PreviewPublic:
    return await templates.preview_stored(session, settings, template_id, (body or PreviewIn()).data)


@router.post("/templates/preview", dependencies=needs("config:write"), response_model=PreviewPublic,
             summary="Render an unsaved template with sample data, e.g. while editing")
async def preview_unsaved(body: UnsavedPreviewIn, settings: SettingsDep) -> PreviewPublic:
    templates.check(body)
    return templates.preview(settings, body.key, body.channel, body.language, body.subject, body.body_text,
                             body.body_html, body.data)

