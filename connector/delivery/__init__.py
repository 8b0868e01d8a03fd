"""Delivery: workers claim due deliveries and settle each claimed group inside one boundary.

worker     the loop: threads, claims ahead, leases      boundary   one group, claim → record
outcomes   the retry policy: verdicts → results        recorder   results in grouped commits
scheduler  pull sources polled on schedule, one poller per source across all workers
"""
