"""A real PostgreSQL server for the tests: Debian's binaries, a cluster in a temporary folder,
listening on a free loopback port; stopped and removed at the end of the session.

Run as root (as CI does), the server runs as the `postgres` user that Debian's package creates:
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

_schemas = itertools.count(1)


def _bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else the newest of Debian's."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    folder: Path
    bin_dir: Path
    port: int
    as_user: str | None

    @property
    def url(self) -> str:
        return f"postgresql://digest@127.0.0.1:{self.port}/digest"

    @classmethod
    def start(cls) -> PostgresServer | str:
        """The running server, or one line saying why there is none (the tests then skip)."""
        bin_dir = _bin_dir()
        if bin_dir is None:
            return "PostgreSQL is not installed (make test installs Debian's postgresql): backend not tested"
        as_user = None
        folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(folder)
                return "running as root, with no postgres user to run PostgreSQL as: backend not tested"
            os.chown(folder, account.pw_uid, account.pw_gid)
            as_user = "postgres"
        server = cls(folder, bin_dir, _free_port(), as_user)
        try:
            server._run("initdb", "-D", "data", "-U", "digest", "-A", "trust", "-E", "UTF8", "--no-sync")
            options = (
                f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            server._run("pg_ctl", "-D", "data", "-l", "log", "-w", "-t", "60", "-o", options, "start")
            with psycopg.connect(server.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE digest")
        except (subprocess.CalledProcessError, psycopg.Error) as exc:
            log = folder / "log"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            server.stop()
            return f"PostgreSQL did not start ({exc}; {tail.strip()}): backend not tested"
        return server

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        subprocess.run(command, cwd=self.folder, check=True, capture_output=True, timeout=120)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`, as an operator's routine restart: every connection is cut."""
        self._run("pg_ctl", "-D", "data", "-l", "log", "-m", "fast", "-w", "-t", "60", "restart")

    def stop(self) -> None:
        try:
            if (self.folder / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", "data", "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def fresh_schema(url: str) -> str:
    """A new, empty schema in the server's database; the URL that makes it the store's."""
    name = f"t{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{url}?options=-csearch_path%3D{name}"
