"""The customer's page for a ticket, rendered on the server: plain HTML and inline CSS, no script and
nothing loaded from elsewhere (it must work from an e-mail link on any device, offline from CDNs).
English and Simplified Chinese; other languages fall back to English. What the customer sees is the
conversation's public part: never internal notes, agents' e-mail addresses, routing or scores."""

from dataclasses import dataclass
from datetime import datetime
from html import escape

from closedloop.durations import humanize
from ticketing import links
from ticketing.models import Comment, CsatResponse, Ticket

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your request {ref}", "skip": "Skip to the conversation", "status": "Status",
        "status.new": "Received", "status.open": "In progress", "status.pending": "Waiting for your answer",
        "status.resolved": "Resolved", "status.closed": "Closed",
        "opened": "Opened", "expected": "Expected first answer", "expected_in": "within {delta} (by {at})",
        "expected_resolution": "Expected resolution", "answered": "First answered",
        "conversation": "Conversation", "you": "You", "team": "Support team", "empty": "No messages yet.",
        "reply": "Reply", "reply_label": "Your message", "send": "Send", "reply_sent": "Thank you, your message "
        "was added to the conversation.", "closed_note": "This request is closed. To tell us something new, "
        "please send us a new message.",
        "csat": "How did we do?", "csat_legend": "Rate our help from 1 (poor) to 5 (excellent)",
        "csat_comment": "Anything you would like to add? (optional)", "csat_send": "Send rating",
        "csat_thanks": "Thank you for your rating.", "csat_current": "Your rating: {score} of 5",
        "score.1": "1 – poor", "score.2": "2", "score.3": "3", "score.4": "4", "score.5": "5 – excellent",
        "error.score": "Please choose a score from 1 to 5.", "error.body": "Please write a message.",
        "error.not_resolved": "You can rate our help once the request is resolved.",
        "not_found": "We could not find this request", "not_found_text": "The link may be incomplete. "
        "Please use the link from our e-mail.", "lang_switch": "中文",
    },
    "zh": {
        "title": "您的请求 {ref}", "skip": "跳到对话", "status": "状态",
        "status.new": "已收到", "status.open": "处理中", "status.pending": "等待您的回复",
        "status.resolved": "已解决", "status.closed": "已关闭",
        "opened": "提交时间", "expected": "预计首次答复", "expected_in": "{delta}内（{at} 之前）",
        "expected_resolution": "预计解决时间", "answered": "首次答复时间",
        "conversation": "对话", "you": "您", "team": "客服团队", "empty": "暂无消息。",
        "reply": "回复", "reply_label": "您的留言", "send": "发送", "reply_sent": "谢谢，您的留言已添加到对话中。",
        "closed_note": "此请求已关闭。如有新的问题，请给我们发送新的消息。",
        "csat": "您对我们的服务满意吗？", "csat_legend": "请为我们的帮助评分，1 分（差）到 5 分（非常好）",
        "csat_comment": "还有什么想告诉我们的吗？（选填）", "csat_send": "提交评分",
        "csat_thanks": "感谢您的评分。", "csat_current": "您的评分：{score} / 5",
        "score.1": "1 – 差", "score.2": "2", "score.3": "3", "score.4": "4", "score.5": "5 – 非常好",
        "error.score": "请选择 1 到 5 分。", "error.body": "请填写留言内容。",
        "error.not_resolved": "请求解决后才可以评分。",
        "not_found": "找不到此请求", "not_found_text": "链接可能不完整，请使用我们邮件中的链接。",
        "lang_switch": "English",
    },
}
LANGUAGES = tuple(STRINGS)

# Contrast: text #1b1b1b on white (16:1), links and buttons #0b4f8a (8:1); focus is always visible.
CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC",
"Microsoft YaHei",sans-serif;color:#1b1b1b;background:#fff}main{max-width:44rem;margin:0 auto;padding:1rem}
a{color:#0b4f8a}a:focus,button:focus,textarea:focus,input:focus{outline:3px solid #b35c00;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.2rem;margin-top:2rem}dl{display:grid;
grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}
ol.conversation{list-style:none;padding:0}ol.conversation li{border:1px solid #767676;border-radius:6px;
padding:.75rem;margin:.5rem 0}ol.conversation li.customer{background:#f3f6fa}.who{font-weight:600}
.when{color:#4a4a4a;font-size:.9rem}.body{white-space:pre-wrap;margin:.25rem 0 0}
textarea{width:100%;min-height:7rem;font:inherit;padding:.5rem;border:1px solid #595959;border-radius:4px}
button{font:inherit;background:#0b4f8a;color:#fff;border:0;border-radius:4px;padding:.6rem 1.2rem;
margin-top:.5rem;cursor:pointer}fieldset{border:1px solid #767676;border-radius:6px}
.scores label{display:inline-block;margin:.25rem .75rem .25rem 0}.notice{border-left:4px solid #1d6b2f;
background:#eef7f0;padding:.5rem .75rem}.error{border-left:4px solid #a4161a;background:#fbeeee;
padding:.5rem .75rem}label{display:block;font-weight:600;margin-top:.5rem}.scores label{font-weight:400}
"""


def page_language(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate:
            base = candidate.strip().lower().replace("_", "-").split("-")[0]
            if base in STRINGS:
                return base
    return "en"


@dataclass(frozen=True)
class Notice:
    text_key: str
    error: bool = False


def _when(at: datetime | None) -> str:
    if at is None:
        return ""
    return f'<time datetime="{at.isoformat()}">{at.strftime("%Y-%m-%d %H:%M")} UTC</time>'


def _document(lang: str, title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="{"zh-Hans" if lang == "zh" else lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>")


def not_found_page(lang: str) -> str:
    t = STRINGS[lang]
    return _document(lang, t["not_found"], f'<main id="main"><h1>{escape(t["not_found"])}</h1>'
                                           f'<p>{escape(t["not_found_text"])}</p></main>')


def ticket_page(ticket: Ticket, comments: list[Comment], agent_names: dict[str, str], csat: CsatResponse | None,
                lang: str, now: datetime, notice: Notice | None = None, focus_csat: bool = False,
                chosen_score: int | None = None, draft: str = "") -> str:
    t = STRINGS[lang]
    token = escape(ticket.public_token, quote=True)
    ref = links.reference(ticket.id)
    other = "en" if lang == "zh" else "zh"
    parts = [f'<a class="skip" href="#conversation">{escape(t["skip"])}</a><main id="main">',
             f'<p><a href="{escape(links.status_url(ticket.public_token))}?lang={other}" '
             f'lang="{"zh-Hans" if other == "zh" else other}">'
             f'{escape(t["lang_switch"])}</a></p>',
             f'<h1>{escape(t["title"].format(ref=ref))}</h1><p>{escape(ticket.title)}</p>']
    if notice is not None:
        role = "alert" if notice.error else "status"
        css = "error" if notice.error else "notice"
        parts.append(f'<p class="{css}" role="{role}">{escape(t[notice.text_key])}</p>')
    facts = [(t["status"], escape(t.get(f"status.{ticket.status}", ticket.status))),
             (t["opened"], _when(ticket.created_at))]
    due = ticket.first_response_due_at
    if ticket.first_responded_at is None and due is not None and ticket.status not in ("resolved", "closed"):
        if due > now:
            value = escape(t["expected_in"].format(delta=humanize(due - now, lang), at="@AT@")).replace(
                "@AT@", _when(due))
        else:
            value = _when(due)
        facts.append((t["expected"], value))
    elif ticket.first_responded_at is not None:
        facts.append((t["answered"], _when(ticket.first_responded_at)))
    if ticket.resolution_due_at and ticket.status not in ("resolved", "closed"):
        facts.append((t["expected_resolution"], _when(ticket.resolution_due_at)))
    parts.append("<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")

    parts.append(f'<h2 id="conversation" tabindex="-1">{escape(t["conversation"])}</h2>')
    items = [f'<li class="customer"><p class="who">{escape(t["you"])} <span class="when">'
             f'{_when(ticket.created_at)}</span></p><p class="body">{escape(ticket.description)}</p></li>']
    for comment in comments:
        mine = comment.author_type == "customer"
        who = t["you"] if mine else agent_names.get(comment.author) or t["team"]
        items.append(f'<li class="{"customer" if mine else "team"}"><p class="who">{escape(who)} '
                     f'<span class="when">{_when(comment.created_at)}</span></p>'
                     f'<p class="body">{escape(comment.body)}</p></li>')
    parts.append('<ol class="conversation">' + "".join(items) + "</ol>")

    if ticket.status in ("resolved", "closed"):
        parts.append(_csat_form(t, lang, token, csat, focus_csat, chosen_score))
    if ticket.status != "closed":
        parts.append(f'<h2 id="reply">{escape(t["reply"])}</h2>'
                     f'<form method="post" action="{escape(links.status_url(ticket.public_token))}/replies">'
                     f'<input type="hidden" name="lang" value="{lang}">'
                     f'<label for="reply-body">{escape(t["reply_label"])}</label>'
                     f'<textarea id="reply-body" name="body" required maxlength="20000">{escape(draft)}</textarea>'
                     f'<button type="submit">{escape(t["send"])}</button></form>')
    else:
        parts.append(f'<p>{escape(t["closed_note"])}</p>')
    parts.append("</main>")
    return _document(lang, t["title"].format(ref=ref), "".join(parts))


def _csat_form(t: dict[str, str], lang: str, token: str, csat: CsatResponse | None, focus: bool,
               chosen: int | None) -> str:
    selected = chosen or (csat.score if csat else None)
    radios = "".join(
        f'<label><input type="radio" name="score" value="{n}" required'
        f'{" checked" if selected == n else ""}{" autofocus" if focus and n == (selected or 1) else ""}> '
        f'{escape(t[f"score.{n}"])}</label>' for n in range(1, 6))
    current = f'<p>{escape(t["csat_current"].format(score=csat.score))}</p>' if csat else ""
    comment = escape(csat.comment or "") if csat else ""
    return (f'<h2 id="csat">{escape(t["csat"])}</h2>{current}'
            f'<form method="post" action="{escape(links.csat_url(token))}">'
            f'<input type="hidden" name="lang" value="{lang}"><fieldset><legend>{escape(t["csat_legend"])}</legend>'
            f'<div class="scores">{radios}</div></fieldset>'
            f'<label for="csat-comment">{escape(t["csat_comment"])}</label>'
            f'<textarea id="csat-comment" name="comment" maxlength="5000">{comment}</textarea>'
            f'<button type="submit">{escape(t["csat_send"])}</button></form>')
