"""HTTP blueprints: inbound webhooks, health and metrics, the Live View and admin API."""
