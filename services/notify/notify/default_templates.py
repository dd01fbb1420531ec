"""The templates notify ships with. They are inserted into the `templates` table at start-up when
missing, and can then be edited over the API (`/v1/templates`). Customer-facing notifications come in
en, zh (Simplified Chinese), es, pt and de; internal ones in en. Customer e-mails get the ticket tag
`[#<reference>]` appended to their subject by the planner (so an edited template cannot lose it).
Keys are event types; "event" is the generic summary used by
subscriptions that name no template."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultTemplate:
    key: str
    channel: str
    language: str
    subject: str | None
    body_text: str
    body_html: str | None = None


def _html(*paragraphs: str) -> str:
    return "\n".join(f"<p>{p}</p>" for p in paragraphs)


_ACK = {
    "en": ("We received your message: {{ ticket.title }}",
           "Hello{% if customer.name %} {{ customer.name }}{% endif %},",
           "Thank you for getting in touch. We have opened ticket {{ reference }} about “{{ ticket.title }}”.",
           "You can expect a first response within {{ expected_response }}.",
           "Follow its status here:",
           "The support team"),
    "es": ("Hemos recibido tu mensaje: {{ ticket.title }}",
           "Hola{% if customer.name %} {{ customer.name }}{% endif %}:",
           "Gracias por escribirnos. Hemos abierto la incidencia {{ reference }} sobre «{{ ticket.title }}».",
           "Recibirás una primera respuesta en un plazo de {{ expected_response }}.",
           "Consulta su estado aquí:",
           "El equipo de soporte"),
    "pt": ("Recebemos a sua mensagem: {{ ticket.title }}",
           "Olá{% if customer.name %} {{ customer.name }}{% endif %},",
           "Obrigado pelo contacto. Abrimos o pedido {{ reference }} sobre “{{ ticket.title }}”.",
           "Receberá uma primeira resposta dentro de {{ expected_response }}.",
           "Acompanhe o estado aqui:",
           "A equipa de apoio"),
    "de": ("Wir haben Ihre Nachricht erhalten: {{ ticket.title }}",
           "Guten Tag{% if customer.name %} {{ customer.name }}{% endif %},",
           "vielen Dank für Ihre Nachricht. Wir haben das Ticket {{ reference }} zu „{{ ticket.title }}“ eröffnet.",
           "Sie erhalten eine erste Antwort innerhalb von {{ expected_response }}.",
           "Den Status verfolgen Sie hier:",
           "Ihr Support-Team"),
    "zh": ("我们已收到您的消息：{{ ticket.title }}",
           "{% if customer.name %}{{ customer.name }}，{% endif %}您好：",
           "感谢您联系我们。我们已就“{{ ticket.title }}”创建工单 {{ reference }}。",
           "我们将在 {{ expected_response }}内给您首次答复。",
           "您可以在这里查看进展：",
           "客服团队"),
}

_CSAT = {
    "en": ("How did we do? {{ ticket.title }}",
           "Hello{% if customer.name %} {{ customer.name }}{% endif %},",
           "Your ticket {{ reference }} (“{{ ticket.title }}”) has been resolved.",
           "Would you take a moment to rate our help from 1 to 5?",
           "The ticket stays available here:",
           "The support team"),
    "es": ("¿Qué tal lo hicimos? {{ ticket.title }}",
           "Hola{% if customer.name %} {{ customer.name }}{% endif %}:",
           "Tu incidencia {{ reference }} («{{ ticket.title }}») se ha resuelto.",
           "¿Nos dedicas un momento para valorar nuestra ayuda del 1 al 5?",
           "La incidencia sigue disponible aquí:",
           "El equipo de soporte"),
    "pt": ("Como nos saímos? {{ ticket.title }}",
           "Olá{% if customer.name %} {{ customer.name }}{% endif %},",
           "O seu pedido {{ reference }} (“{{ ticket.title }}”) foi resolvido.",
           "Pode dedicar um momento a avaliar a nossa ajuda de 1 a 5?",
           "O pedido continua disponível aqui:",
           "A equipa de apoio"),
    "de": ("Wie zufrieden waren Sie? {{ ticket.title }}",
           "Guten Tag{% if customer.name %} {{ customer.name }}{% endif %},",
           "Ihr Ticket {{ reference }} („{{ ticket.title }}“) wurde gelöst.",
           "Würden Sie unsere Hilfe kurz mit 1 bis 5 bewerten?",
           "Das Ticket finden Sie weiterhin hier:",
           "Ihr Support-Team"),
    "zh": ("您对我们的服务满意吗？{{ ticket.title }}",
           "{% if customer.name %}{{ customer.name }}，{% endif %}您好：",
           "您的工单 {{ reference }}（“{{ ticket.title }}”）已解决。",
           "能否花一点时间，为我们的帮助打个分（1 到 5 分）？",
           "您仍可以在这里查看工单：",
           "客服团队"),
}

# An agent's reply (or the resolution message, or an auto-reply): the agent's own words, then the link.
_REPLY = {
    "en": ("Re: {{ ticket.title }}", "You can follow your request and answer here:",
           "Simply reply to this e-mail to answer."),
    "zh": ("回复：{{ ticket.title }}", "您可以在这里查看并回复您的请求：", "直接回复此邮件即可答复我们。"),
    "es": ("Re: {{ ticket.title }}", "Puedes seguir tu solicitud y responder aquí:",
           "Responde a este correo para contestarnos."),
    "pt": ("Re: {{ ticket.title }}", "Pode acompanhar o seu pedido e responder aqui:",
           "Basta responder a este e-mail."),
    "de": ("Re: {{ ticket.title }}", "Ihre Anfrage verfolgen und beantworten Sie hier:",
           "Antworten Sie einfach auf diese E-Mail."),
}


def _reply(language: str) -> DefaultTemplate:
    subject, follow, answer = _REPLY[language]
    text = ("{{ reply.text }}\n\n— {{ reply.author }}\n\n"
            f"{{% if status_url %}}{follow} {{{{ status_url }}}}\n{{% endif %}}{answer}\n")
    html = ('<div style="white-space:pre-wrap">{{ reply.text }}</div>\n<p>— {{ reply.author }}</p>\n'
            f'{{% if status_url %}}<p>{follow} <a href="{{{{ status_url }}}}">{{{{ status_url }}}}</a></p>'
            "{% endif %}\n"
            f"<p>{answer}</p>")
    return DefaultTemplate("ticket.replied.v1", "email", language, subject, text, html)


def _acknowledgement(language: str) -> DefaultTemplate:
    subject, greeting, opened, expect, follow, signature = _ACK[language]
    text = (f"{greeting}\n\n{opened}\n{{% if expected_response %}}{expect}\n{{% endif %}}\n"
            f"{follow} {{{{ status_url }}}}\n\n{signature}\n")
    html = _html(greeting, opened) + f"\n{{% if expected_response %}}<p>{expect}</p>{{% endif %}}\n" + _html(
        f'{follow} <a href="{{{{ status_url }}}}">{{{{ status_url }}}}</a>', signature)
    return DefaultTemplate("ticket.created.v1", "email", language, subject, text, html)


def _csat(language: str) -> DefaultTemplate:
    subject, greeting, resolved, ask, follow, signature = _CSAT[language]
    text = (f"{greeting}\n\n{resolved}\n{ask}\n{{{{ csat_url }}}}\n\n"
            f"{follow} {{{{ status_url }}}}\n\n{signature}\n")
    html = _html(greeting, resolved, f'{ask}<br><a href="{{{{ csat_url }}}}">{{{{ csat_url }}}}</a>',
                 f'{follow} <a href="{{{{ status_url }}}}">{{{{ status_url }}}}</a>', signature)
    return DefaultTemplate("ticket.resolved.v1", "email", language, subject, text, html)


_INTERNAL = [
    DefaultTemplate(
        "ticket.assigned.v1", "email", "en",
        "[{{ ticket.priority }}] Assigned to you: {{ ticket.title }}",
        "Ticket {{ reference }} ({{ ticket.team }}, {{ ticket.category }}) is now assigned to you"
        "{% if event.previous_assignee %}, previously {{ event.previous_assignee }}{% endif %}.\n"
        "{% if due_at %}First response due: {{ due_at }}.\n{% endif %}"
        "Customer: {{ customer.name or customer.id }} ({{ customer.tier }})\n",
    ),
    DefaultTemplate(
        "ticket.sla_warning.v1", "email", "en",
        "[{{ ticket.priority }}] SLA warning: {{ ticket.title }}",
        "The {{ event.target | replace('_', ' ') }} target of ticket {{ reference }} ({{ ticket.team }}) is due at "
        "{{ event.due_at }}.\nAssignee: {{ ticket.assignee or 'nobody yet' }}.\n",
    ),
    DefaultTemplate(
        "ticket.sla_breached.v1", "email", "en",
        "[{{ ticket.priority }}] SLA breached: {{ ticket.title }}",
        "The {{ event.target | replace('_', ' ') }} target of ticket {{ reference }} ({{ ticket.team }}) was due at "
        "{{ event.due_at }} and has been missed.\n"
        "{% if event.previous_priority %}Priority raised from {{ event.previous_priority }} to "
        "{{ ticket.priority }}.\n{% endif %}Assignee: {{ ticket.assignee or 'nobody yet' }}.\n",
    ),
    DefaultTemplate(
        "alert.raised.v1", "slack", "en", None,
        ":rotating_light: *{{ alert.severity | upper }}* {{ alert.kind }}: {{ alert.message }}"
        "{% if alert.metrics %}\n\n{% for name, value in alert.metrics | dictsort %}• {{ name }}: {{ value }}\n"
        "{% endfor %}{% endif %}",
    ),
    DefaultTemplate(
        "alert.raised.v1", "email", "en",
        "[{{ alert.severity | upper }}] {{ alert.kind }}: {{ alert.message | truncate(80) }}",
        "{{ alert.message }}\n{% for name, value in alert.metrics | dictsort %}\n{{ name }}: {{ value }}{% endfor %}\n",
    ),
    DefaultTemplate(
        "event", "email", "en",
        "{% if ticket %}[{{ ticket.priority }}] {{ event_type }}: {{ ticket.title }}"
        "{% else %}{{ event_type }}{% endif %}",
        "{% if ticket %}Ticket {{ reference }} — {{ ticket.title }}\nTeam: {{ ticket.team }}, priority "
        "{{ ticket.priority }}, status {{ ticket.status }}, category {{ ticket.category }}.\n"
        "{% if ticket.assignee %}Assignee: {{ ticket.assignee }}.\n{% endif %}"
        "{% elif alert %}{{ alert.severity | upper }} {{ alert.kind }}: {{ alert.message }}\n{% endif %}",
    ),
    DefaultTemplate(
        "event", "slack", "en", None,
        "{% if ticket %}*{{ event_type }}* · [{{ ticket.priority }}] {{ ticket.title }}\n\n"
        "Team {{ ticket.team }} · {{ ticket.category }} · status {{ ticket.status }}"
        "{% if ticket.assignee %} · assignee {{ ticket.assignee }}{% endif %}"
        "{% elif alert %}:rotating_light: *{{ alert.severity | upper }}* {{ alert.kind }}: {{ alert.message }}"
        "{% else %}*{{ event_type }}*{% endif %}",
    ),
]

DEFAULT_TEMPLATES: list[DefaultTemplate] = [
    *(_acknowledgement(language) for language in _ACK),
    *(_csat(language) for language in _CSAT),
    *(_reply(language) for language in _REPLY),
    *_INTERNAL,
]
