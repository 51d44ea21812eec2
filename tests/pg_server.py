"""A throwaway PostgreSQL server for tests and benchmarks: initdb with trust auth, pg_ctl on a free loopback port,
its unix socket in its own temporary folder, fsync off; stopped and removed at the end.

    with throwaway_server() as server:          # PostgresUnavailable (with the reason) where it cannot start
        url = server.create_database("t1")      # postgresql://postgres@127.0.0.1:PORT/t1

As root, initdb and the server run as the ``postgres`` system user (the Debian package creates it); the binaries are
the newest under /usr/lib/postgresql/*/bin (``.ci/run`` installs the ``postgresql`` package where it is missing), or
on PATH.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be started here; the message says why."""


def find_bin_dir() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    bin_dir: Path
    data_dir: Path
    port: int
    run_as: List[str]   # the command prefix that runs a tool as the server's user

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, password: str = "") -> str:
        user = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run([*self.run_as, str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "-d", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-c", sql], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")
        return out.stdout.strip()

    def create_database(self, name: str, password: str = "") -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name, password)

    def pg_ctl(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
                              capture_output=True, text=True, timeout=timeout_s)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        out = self.pg_ctl("-o", options, "-l", str(self.data_dir / "server.log"), "-w", "start")
        if out.returncode != 0:
            log = (self.data_dir / "server.log")
            tail = log.read_text()[-600:] if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {out.stderr.strip() or out.stdout.strip()} {tail}")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")


@contextlib.contextmanager
def throwaway_server() -> Iterator[Server]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    run_as: List[str] = []
    top = Path(tempfile.mkdtemp(prefix="fleetnas-pg-"))
    data_dir = top / "data"
    try:
        if os.geteuid() == 0:   # initdb and postgres refuse to run as root
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root, and there is no `postgres` user to run the server as "
                                          "(apt-get install postgresql creates it)") from None
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root without `runuser` to start the server as postgres")
            run_as = ["runuser", "-u", "postgres", "--"]
            os.chown(top, user.pw_uid, user.pw_gid)
        out = subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data_dir), "--auth=trust", "-U",
                              "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(out.stderr or out.stdout).strip()[-600:]}")
        server = Server(bin_dir, data_dir, free_port(), run_as)
        try:
            server.start()
        except PostgresUnavailable:
            server.port = free_port()   # the port may have been taken in between: once more
            server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)
