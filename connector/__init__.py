"""The connector's core: it takes partner events in (webhooks, pull sources), keeps them in a
durable outbox and delivers them to partners in consent order, with a Live View, an admin API
and a CLI. It knows no partner by name: partners are plugins (`plugins/<name>/`), found
through the `connector.plugins` entry points."""
