"""The durable outbox: every SQL statement of the queue, each module named for what it does.

tables     the schema            engine      SQLite write gate, engines, read-only connections
consent    the consent-order rule (the only place it is written)
intake     accepted events and their planned deliveries, in one short transaction
claims     leasing due deliveries      attempts    recording results and the attempt log
breakers   paused keys, open circuits  replay      sending finished deliveries again
retention  purge                       pollers     pull-source cursors and poll leases
"""
