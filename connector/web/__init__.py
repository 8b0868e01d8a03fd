"""The HTTP side: inbound webhooks, health and metrics, the Live View and the admin API, with
the admin access rules, the arguments they accept and the read model they show."""
