"""A throw-away PostgreSQL cluster on loopback, for the tests and the benchmarks.

``initdb`` in a temporary directory, ``pg_ctl start`` on a free port, trust authentication on
127.0.0.1 only, removed on exit. PostgreSQL refuses to run as root: as root the commands run as
the ``postgres`` system user (``runuser``) in a directory it owns. The binaries are looked up in
``/usr/lib/postgresql/<version>/bin`` (Debian's packages, newest first), then on ``PATH``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.servers import HOST, free_port

__all__ = ["Cluster", "find_bin", "postgres_cluster", "unavailable_reason"]

_USER = "postgres"


def find_bin(name: str) -> str | None:
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(os.path.join(folder, name), os.X_OK):
            return os.path.join(folder, name)
    return shutil.which(name)


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, or None."""
    if find_bin("initdb") is None or find_bin("pg_ctl") is None:
        return "PostgreSQL is not installed (initdb/pg_ctl not found; apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_USER)
        except KeyError:
            return "running as root and there is no 'postgres' system user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to drop to the 'postgres' user"
    return None


@dataclass(frozen=True, slots=True)
class Cluster:
    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@{HOST}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a generated identifier, never outside input
        return self.url(name)


def _run(cmd: list[str], log: Path) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", _USER, "--", *cmd]
    with open(log, "ab") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    assert initdb and pg_ctl
    folder = Path(tempfile.mkdtemp(prefix="myositis-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
    # setup.log: our commands' output, written by this process; server.log: written by the server's own user.
    data, log, server_log = folder / "data", folder / "setup.log", folder / "server.log"
    port = free_port()
    started = False
    try:
        _run([initdb, "-D", str(data), "-U", _USER, "--auth=trust", "-E", "UTF8", "--no-sync"], log)
        options = f"-p {port} -k {folder} -c listen_addresses={HOST} -c max_connections=200"
        _run([pg_ctl, "-D", str(data), "-o", options, "-l", str(server_log), "-w", "-t", "60", "start"], log)
        started = True
        yield Cluster(port, folder)
    except subprocess.CalledProcessError as exc:
        tail = "".join(p.read_text(errors="replace")[-1500:] for p in (log, server_log) if p.exists())
        raise RuntimeError(f"PostgreSQL did not start: {exc}\n{tail}") from None
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], log)
        shutil.rmtree(folder, ignore_errors=True)
