"""Real processes for end-to-end tests: the Listrak sandbox, gunicorn (wsgi:app) and workers,
talking over HTTP on loopback ports, sharing one store."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from tests.conftest import ROOT, sign

SANDBOX_ENV = {
    "LISTRAK_CLIENT_ID": "sandbox-client",
    "LISTRAK_CLIENT_SECRET": "sandbox-secret",
    "LISTRAK_STAGING_CLIENT_ID": "sandbox-staging-client",
    "LISTRAK_STAGING_CLIENT_SECRET": "sandbox-staging-secret",
    "EXTOLE_WEBHOOK_SECRET": "e2e-webhook-secret",
    "SEGMENT_WEBHOOK_SECRET": "e2e-segment-secret",
    "CONNECTOR_ADMIN_TOKEN": "e2e-admin-token",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout=20.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}; last: {last!r}")


class Stack:
    """Start with `Stack(tmp_path).start()`; everything stops in `stop()`."""

    def __init__(self, workdir: Path, settings: dict | None = None, web_workers: int = 2,
                 partner_overrides: dict | None = None, extra_files: dict | None = None,
                 database_url: str | None = None):
        self.workdir = Path(workdir)
        self.config_dir = self.workdir / "config"
        self.sandbox_port = free_port()
        self.web_port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.database_url = database_url or f"sqlite:///{self.workdir}/connector.db"
        self.web_workers = web_workers
        self.settings = settings or {}
        self.partner_overrides = partner_overrides or {}
        self.extra_files = extra_files or {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            **SANDBOX_ENV,
            "LISTRAK_AUTH_URL": f"{self.sandbox_url}/OAuth2/Token",
            "LISTRAK_API_URL": f"{self.sandbox_url}/email/v1",
            "CONNECTOR_CONFIG_DIR": str(self.config_dir),
            "CONNECTOR_DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
        }
        self.webhook_secret = SANDBOX_ENV["EXTOLE_WEBHOOK_SECRET"]
        self.admin_token = SANDBOX_ENV["CONNECTOR_ADMIN_TOKEN"]

    # -- setup ---------------------------------------------------------------------------------
    def write_config(self) -> None:
        shutil.copytree(ROOT / "config", self.config_dir, dirs_exist_ok=True)
        settings = yaml.safe_load((self.config_dir / "connector.yaml").read_text()) or {}
        for section, values in self.settings.items():
            if isinstance(values, dict):
                settings.setdefault(section, {}).update(values)
            else:
                settings[section] = values
        (self.config_dir / "connector.yaml").write_text(yaml.safe_dump(settings))
        partner_path = self.config_dir / "partners" / "listrak.yaml"
        partner = yaml.safe_load(partner_path.read_text())
        partner.update(self.partner_overrides)
        partner_path.write_text(yaml.safe_dump(partner))
        for relative, content in self.extra_files.items():
            path = self.config_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start(self, workers: int = 1) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "metrics").mkdir(exist_ok=True)
        self.write_config()
        self.procs["sandbox"] = self._spawn("sandbox", [
            sys.executable, "-m", "connector.cli", "sandbox", "--port", str(self.sandbox_port)])
        wait_until(lambda: requests.get(f"{self.sandbox_url}/_sandbox/state", timeout=1).ok,
                   message="sandbox")
        self.procs["web"] = self._spawn("web", [
            sys.executable, "-m", "gunicorn", "--workers", str(self.web_workers),
            "--bind", f"127.0.0.1:{self.web_port}", "--log-level", "warning", "wsgi:app"])
        wait_until(lambda: requests.get(f"{self.base_url}/readyz", timeout=1).ok,
                   message="gunicorn /readyz")
        for _ in range(workers):
            self.add_worker()
        return self

    def add_worker(self) -> subprocess.Popen:
        proc = self._spawn(f"worker-{len(self.workers)}",
                           [sys.executable, "-m", "connector.cli", "worker"])
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=10)
        self.workers.remove(proc)

    def stop(self) -> None:
        for proc in [*self.workers, *self.procs.values()]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in [*self.workers, *self.procs.values()]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.workers.clear()
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.workdir.glob("*.log")))

    # -- talking to it -------------------------------------------------------------------------
    def post_events(self, payload, source: str = "extole") -> requests.Response:
        body = json.dumps(payload).encode()
        return requests.post(f"{self.base_url}/webhooks/{source}", data=body, timeout=30,
                             headers={"Content-Type": "application/json",
                                      "X-Extole-Signature": sign(body, self.webhook_secret)})

    def sandbox_state(self) -> dict:
        return requests.get(f"{self.sandbox_url}/_sandbox/state", timeout=10).json()

    def sandbox(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.sandbox_url}{path}", timeout=10, **kwargs)

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=10,
                                **kwargs)

    def delivery_states(self) -> dict[str, int]:
        from sqlalchemy import func, select

        from connector.outbox.engine import make_engine
        from connector.outbox.tables import deliveries
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return dict(conn.execute(select(deliveries.c.state, func.count())
                                         .group_by(deliveries.c.state)).all())
        finally:
            engine.dispose()
