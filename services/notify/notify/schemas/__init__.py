"""Request and answer bodies, one module per resource: `webhooks`, `subscriptions`, `templates`,
`deliveries`; `checks` holds the field checks they share."""
