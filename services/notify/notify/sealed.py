"""Notify's secrets at rest (closedloop.secretbox): webhook signing secrets and Slack hook URLs.

- A webhook endpoint's `secret` is stored sealed; it is shown once, in the answer to `POST /v1/webhooks`,
  and opened only by the dispatcher to sign a delivery.
- A Slack incoming-webhook URL is itself the credential (whoever has it may post), so a subscription's
  Slack `target` is stored sealed, and deliveries, events, logs and the API name the hook only by its
  fingerprint `slack-hook:<20 hex>`. The dispatcher finds the URL of a fingerprint among the Slack
  subscriptions (and `NOTIFY_OPS_SLACK_WEBHOOK_URL`) when it sends: a hook whose subscription was
  deleted is no longer sent to.
"""

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.secretbox import Keyring, SecretUnreadable, fingerprint
from notify.models import Subscription, WebhookEndpoint

log = logging.getLogger(__name__)

SLACK_PREFIX = "slack-hook:"


def slack_name(url: str) -> str:
    return SLACK_PREFIX + fingerprint(url)


async def slack_urls(session: AsyncSession, keyring: Keyring, ops_url: str = "") -> dict[str, str]:
    """Fingerprint → URL of every Slack hook notify may send to."""
    urls = {slack_name(ops_url): ops_url} if ops_url else {}
    for sealed in await session.scalars(select(Subscription.target_sealed).where(Subscription.channel == "slack")):
        try:
            url = keyring.open(sealed) if sealed else None
        except SecretUnreadable:
            log.error("a Slack hook URL is sealed under a key not in NOTIFY_SECRET_KEYS")
            continue
        if url:
            urls[slack_name(url)] = url
    return urls


async def reseal_all(session: AsyncSession, keyring: Keyring) -> int:
    """Seal what is stored in clear and re-seal what an older key sealed (key rotation); at start-up."""
    changed = keyring.reseal_attribute(await session.scalars(select(WebhookEndpoint)), "secret")
    slack = await session.scalars(select(Subscription).where(Subscription.channel == "slack"))
    return changed + keyring.reseal_attribute(slack, "target_sealed")
