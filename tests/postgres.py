"""A throw-away PostgreSQL server for tests: Debian's ``postgresql`` package (``initdb`` + ``pg_ctl``), a data
folder and a Unix socket in a temporary folder, no TCP port. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` account the package creates, in a folder that account owns. ``.ci/run``
installs the package; without it the tests skip on a learner's machine and fail in CI."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SUPERUSER = "grader"  # the role initdb creates; trust authentication on the private socket only


def binaries():
    """The folder with initdb and pg_ctl, or None: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def need_binaries():
    folder = binaries()
    if folder is None:
        message = ("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin); "
                   "install Debian's postgresql package to run the PostgreSQL gradebook tests")
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run them: .ci/run installs it)")
        pytest.skip(message)
    return folder


class Server:
    """``with Server() as server: server.create_database("x")`` -> a URL for ``COURSE_DB_URL``; stopped on exit."""

    def __init__(self):
        self.bin = need_binaries()
        self.as_user = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root, and there is no 'postgres' account to run PostgreSQL as "
                            "(Debian's postgresql package creates it)")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.folder = None

    def run(self, *args):
        result = subprocess.run([*self.as_user, *map(str, args)], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = (self.folder / "server.log") if self.folder else None
            extra = log.read_text() if log and log.is_file() else ""
            raise RuntimeError(f"{' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}{extra}")
        return result

    def __enter__(self):
        # Not under pytest's tmp_path: that folder is private to root, and the server's account must reach it.
        self.folder = Path(tempfile.mkdtemp(prefix="gru-pg-"))
        try:
            if self.as_user:
                shutil.chown(self.folder, "postgres", "postgres")
            self.run(self.bin / "initdb", "-D", self.folder / "data", "-U", SUPERUSER, "-A", "trust",
                     "-E", "UTF8", "--no-sync")
            self.run(self.bin / "pg_ctl", "-D", self.folder / "data", "-l", self.folder / "server.log", "-w",
                     "-t", "60", "-o", f"-k {self.folder} -c listen_addresses= -F", "start")
        except BaseException:
            self.stop()
            raise
        return self

    def url(self, database):
        return f"postgresql://{SUPERUSER}@/{database}?host={self.folder}"

    def create_database(self, name):
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self):
        if self.folder is None:
            return
        try:
            if (self.folder / "data" / "postmaster.pid").exists():
                subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"),
                                "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __exit__(self, *exc):
        self.stop()
