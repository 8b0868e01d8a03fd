"""Referral program → Listrak connector: the core (knows no partner by name)."""
