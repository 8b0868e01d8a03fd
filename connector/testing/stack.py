"""Real processes on loopback ports: partner look-alikes (sidecars), gunicorn (wsgi:app) and
workers, sharing one store and a config directory copied from the example configuration.

What a plugin brings to such a stack (its look-alike, the environment its config files read,
how its sources sign) is its `Part`, registered under the entry-point group `connector.testing`
like the plugin itself; `installed_parts` finds the parts of the plugins a config uses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import requests
import yaml

from connector.testing.store import StoreReader

# The checkout: wsgi.py and the example config/ live there (tests and benchmarks run from it).
ROOT = Path(__file__).resolve().parents[2]

Signer = Callable[[bytes], dict[str, str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    """`check()`'s first truthy result, polled every `interval` until `timeout` seconds have
    passed (exceptions count as not yet); AssertionError naming `message` after that."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # not up yet
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {message}; last: {last!r}")
        time.sleep(interval)


@dataclass(frozen=True)
class Sidecar:
    """A process started before gunicorn (a partner's sandbox): up once `ready_url` answers 2xx."""

    name: str
    argv: list[str]
    ready_url: str


@dataclass
class Part:
    """What one plugin brings to a Stack: processes to start first (its partner's look-alike),
    values for the ${ENV} placeholders its config files hold, and signers by source plugin (the
    signature headers its push sources check, for `Stack.post_events`). A plugin's testing
    module subclasses it to add ways to read and steer its look-alike."""

    sidecars: list[Sidecar] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    signers: dict[str, Signer] = field(default_factory=dict)
    #: Events posted without naming a source go to this plugin's source (the primary sender).
    primary_source: bool = False
    #: Files of the example config a stack leaves out unless it keeps them (a flow that would
    #: send requests a test did not cause).
    left_out: tuple[str, ...] = ()


PARTS_GROUP = "connector.testing"


def plugins_used(config_dir: Path, leave_out: Iterable[str] = ()) -> set[str]:
    """The `plugin:` of every source and partner file under `config_dir`, but those left out."""
    skipped = set(leave_out)
    used: set[str] = set()
    for folder in ("sources", "partners"):
        for path in sorted((config_dir / folder).glob("*.y*ml")):
            if f"{folder}/{path.name}" not in skipped:
                used.add(str((yaml.safe_load(path.read_text()) or {}).get("plugin")))
    return used


def installed_parts() -> dict[str, Part]:
    """{plugin: a new Part} for every plugin that registers one in `connector.testing`."""
    return {ep.name: ep.load()() for ep in sorted(entry_points(group=PARTS_GROUP), key=lambda e: e.name)}


ADMIN_TOKEN = "e2e-admin-token-for-tests"


def example_env() -> dict[str, str]:
    """What the example config's ${ENV} placeholders need on real processes, from every
    installed part (with each look-alike's URL on a port nothing listens on until a stack
    starts it), and the admin token."""
    return {
        **{k: v for part in installed_parts().values() for k, v in part.env.items()},
        "CONNECTOR_ADMIN_TOKEN": ADMIN_TOKEN,
    }


def example_stack(
    workdir: Path,
    settings: dict | None = None,
    web_workers: int = 2,
    partner_overrides: dict[str, dict] | None = None,
    extra_files: dict | None = None,
    database_url: str | None = None,
    keep: Iterable[str] = (),
) -> Stack:
    """The example configuration (config/) on real processes, with the part of every plugin it
    uses: their look-alikes as partners, their sources' signers, posts without a source going
    to the primary sender's. Files a part leaves out stay out unless `keep` (or `extra_files`)
    names them."""
    every = installed_parts()
    kept = set(keep)
    leave_out = sorted({f for part in every.values() for f in part.left_out} - kept)
    used = plugins_used(ROOT / "config", leave_out)
    parts = {name: part for name, part in every.items() if name in used}
    primary = [name for name, part in parts.items() if part.primary_source]
    default_source = None
    if primary:
        sources = sorted((ROOT / "config" / "sources").glob("*.yaml"))
        named = [p.stem for p in sources if (yaml.safe_load(p.read_text()) or {}).get("plugin") == primary[0]]
        default_source = named[0] if named else None
    return Stack(
        workdir,
        settings,
        web_workers,
        partner_overrides,
        extra_files,
        database_url,
        parts=parts,
        leave_out=leave_out,
        default_source=default_source,
    )


class Stack:
    """Start with `Stack(workdir).start()`; everything stops in `stop()`.

    `settings` are merged into connector.yaml; `partner_overrides` maps a partner config name to
    the keys replaced in config/partners/<name>.yaml; `extra_files` are written under the config
    directory; `leave_out` names files of the example config not copied (unless `extra_files`
    gives them); `env` feeds the config's ${ENV} placeholders; `signers` map a source id to the
    signature headers for a body (used by `post_events`); `parts` are plugins' parts by plugin
    name (their sidecars, env and signers join the ones given; `part(name)` returns one).
    """

    def __init__(
        self,
        workdir: Path,
        settings: dict | None = None,
        web_workers: int = 2,
        partner_overrides: dict[str, dict] | None = None,
        extra_files: dict | None = None,
        database_url: str | None = None,
        *,
        env: dict[str, str] | None = None,
        sidecars: list[Sidecar] | tuple = (),
        signers: dict[str, Signer] | None = None,
        default_source: str | None = None,
        admin_token: str = ADMIN_TOKEN,
        example_config: Path = ROOT / "config",
        parts: dict[str, Part] | None = None,
        leave_out: Sequence[str] = (),
    ):
        self.workdir = Path(workdir)
        self.config_dir = self.workdir / "config"
        self.example_config = Path(example_config)
        self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.database_url = database_url or f"sqlite:///{self.workdir}/connector.db"
        self.web_workers = web_workers
        self.settings = settings or {}
        self.partner_overrides = partner_overrides or {}
        self.extra_files = extra_files or {}
        self.parts = dict(parts or {})
        self.leave_out = tuple(leave_out)
        self.sidecars = [*sidecars, *(s for part in self.parts.values() for s in part.sidecars)]
        self.signers = {**self._signers_by_source(), **(signers or {})}
        self.default_source = default_source
        self.admin_token = admin_token
        self.procs: dict[str, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            **{k: v for part in self.parts.values() for k, v in part.env.items()},
            **(env or {}),
            "CONNECTOR_ADMIN_TOKEN": admin_token,
            "CONNECTOR_CONFIG_DIR": str(self.config_dir),
            "CONNECTOR_DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
        }

    def part(self, plugin: str) -> Part:
        return self.parts[plugin]

    def _signers_by_source(self) -> dict[str, Signer]:
        """A signer for each source file of the example config whose plugin's part has one."""
        found = {}
        for path in sorted((self.example_config / "sources").glob("*.y*ml")):
            plugin = (yaml.safe_load(path.read_text()) or {}).get("plugin")
            for part in self.parts.values():
                if plugin in part.signers:
                    found[path.stem] = part.signers[plugin]
        return found

    # -- setup ---------------------------------------------------------------------------------
    def write_config(self) -> None:
        shutil.copytree(self.example_config, self.config_dir, dirs_exist_ok=True)
        for relative in self.leave_out:
            if relative not in self.extra_files:
                (self.config_dir / relative).unlink(missing_ok=True)
        settings = yaml.safe_load((self.config_dir / "connector.yaml").read_text()) or {}
        for section, values in self.settings.items():
            if isinstance(values, dict):
                settings.setdefault(section, {}).update(values)
            else:
                settings[section] = values
        (self.config_dir / "connector.yaml").write_text(yaml.safe_dump(settings))
        for name, overrides in self.partner_overrides.items():
            partner_path = self.config_dir / "partners" / f"{name}.yaml"
            partner = yaml.safe_load(partner_path.read_text())
            partner.update(overrides)
            partner_path.write_text(yaml.safe_dump(partner))
        for relative, content in self.extra_files.items():
            path = self.config_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self, workers: int = 1) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "metrics").mkdir(exist_ok=True)
        self.write_config()
        for sidecar in self.sidecars:
            self.procs[sidecar.name] = self._spawn(sidecar.name, sidecar.argv)
            wait_until(lambda url=sidecar.ready_url: requests.get(url, timeout=1).ok, message=sidecar.name)
        self.procs["web"] = self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(self.web_workers),
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
        )
        wait_until(lambda: requests.get(f"{self.base_url}/readyz", timeout=1).ok, message="gunicorn /readyz")
        for _ in range(workers):
            self.add_worker()
        return self

    def add_worker(self) -> subprocess.Popen:
        proc = self._spawn(f"worker-{len(self.workers)}", [sys.executable, "-m", "connector.cli", "worker"])
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
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.workdir.glob("*.log"))
        )

    # -- talking to it -------------------------------------------------------------------------
    def post_events(self, payload, source: str | None = None) -> requests.Response:
        """POST `payload` as JSON to /webhooks/<source>, signed by that source's signer."""
        source = source or self.default_source
        body = json.dumps(payload).encode()
        signer = self.signers.get(source) if source else None
        headers = {"Content-Type": "application/json", **(signer(body) if signer else {})}
        return requests.post(f"{self.base_url}/webhooks/{source}", data=body, timeout=30, headers=headers)

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=10, **kwargs)

    def waiting_to_plan(self) -> int:
        """Accepted events no worker has planned yet."""
        reader = StoreReader(self.database_url)
        try:
            return reader.waiting_to_plan()
        finally:
            reader.close()

    def delivery_states(self) -> dict[str, int]:
        """{state: number of deliveries} read from the store."""
        reader = StoreReader(self.database_url)
        try:
            return reader.delivery_states()
        finally:
            reader.close()
