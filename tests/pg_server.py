"""A real PostgreSQL server for the tests, started in a temporary folder with initdb/pg_ctl.

`pg_server` (session scope) yields the server's URL. PostgreSQL refuses to run as root, so under root the server is
run as the `postgres` user (created by the Debian `postgresql` package). The test is skipped, with the reason, when
the binaries are missing; CI installs them (apt-get install postgresql). Set CRMETRICS_PG_BIN to choose a folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def pg_bin() -> str | None:
    """The folder holding initdb and pg_ctl: $CRMETRICS_PG_BIN, the newest Debian install, or PATH."""
    candidates = [os.environ.get("CRMETRICS_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    found = shutil.which("pg_ctl")
    candidates.append(os.path.dirname(os.path.realpath(found)) if found else "")
    for folder in candidates:
        if folder and os.path.exists(os.path.join(folder, "initdb")) and os.path.exists(os.path.join(folder, "pg_ctl")):
            return folder
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Start PostgreSQL once per test session; yield `postgresql://postgres@127.0.0.1:PORT/postgres`."""
    folder = pg_bin()
    if folder is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    base = tempfile.mkdtemp(prefix="crmetrics-pg-")
    if os.geteuid() == 0:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, port = os.path.join(base, "data"), free_port()
    run = {"check": True, "capture_output": True, "text": True, "cwd": base}
    try:
        subprocess.run(
            _as_server_user(
                [
                    f"{folder}/initdb",
                    "-D",
                    data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            **run,
        )
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        subprocess.run(
            _as_server_user(
                [
                    f"{folder}/pg_ctl",
                    "-D",
                    data,
                    "-l",
                    os.path.join(base, "log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            **run,
        )
    except subprocess.CalledProcessError as error:
        log = os.path.join(base, "log")
        detail = Path(log).read_text()[-2000:] if os.path.exists(log) else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {error.stderr or error.stdout}\n{detail}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([f"{folder}/pg_ctl", "-D", data, "-m", "immediate", "stop"]), capture_output=True, cwd=base
        )
        shutil.rmtree(base, ignore_errors=True)
