"""Helpers shared by the connector's tests, its benchmarks and plugins' tests (as flask.testing
is for Flask): real processes on loopback ports, waiting for a condition with a deadline,
reading the store, generating load. What is particular to a partner (its payloads, signatures,
sandbox) lives in that plugin's `testing` module and builds on these."""

from connector.testing.load import batches, peak_rate, post_all
from connector.testing.procfs import cpu_seconds
from connector.testing.stack import (
    ROOT,
    Part,
    Sidecar,
    Signer,
    Stack,
    example_env,
    example_stack,
    free_port,
    installed_parts,
    wait_until,
)
from connector.testing.store import StoreReader

__all__ = [
    "ROOT",
    "Part",
    "Sidecar",
    "Signer",
    "Stack",
    "StoreReader",
    "batches",
    "cpu_seconds",
    "example_env",
    "example_stack",
    "free_port",
    "installed_parts",
    "peak_rate",
    "post_all",
    "wait_until",
]
