"""A real CalDAV server for the tests: Radicale (from PyPI) in a subprocess on a free loopback port.

Why a real server: what a CalDAV server does with a PUT (which UID it keys on, whether a second PUT
replaces or duplicates, which VTIMEZONE it keeps) is the behaviour under test, and a mock would
only repeat our own assumptions. Radicale starts in well under a second, so one server serves the
whole test session (the `radicale` fixture in `event_importer_tests/integrations/destinations.py`), each
test writing to a calendar collection of its own (`new_calendar`).
Authentication is htpasswd with a plain-text file, so wrong credentials are really refused; with
`auth=False` the server has none (and lets anyone write anywhere), as some deployments do.
"""

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Self

import httpx

USERNAME = "alice"
# A distinctive value, so a search for it in rows, messages and reprs cannot match by accident.
PASSWORD = "caldav-test-pw-7c1e9a4f"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


def _free_port() -> int:
    # Radicale refuses port 0, so ask the OS for a free port and hand it over. Another process could
    # take it in between; `start` then sees Radicale exit and tries another port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RadicaleServer:
    """`with RadicaleServer(folder) as server:` serves until the block ends."""

    def __init__(self, folder: Path, *, auth: bool = True) -> None:
        self.folder = folder
        self.auth = auth
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log = folder / "radicale.log"

    def start(self, attempts: int = 3) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        users = self.folder / "users"
        users.write_text(f"{USERNAME}:{PASSWORD}\n", encoding="utf-8")
        rights = self.folder / "rights"
        rights.write_text("[anyone]\nuser: .*\ncollection: .*\npermissions: RrWw\n", encoding="utf-8")
        if self.auth:
            auth = [
                "--auth-type", "htpasswd",
                "--auth-htpasswd-filename", str(users),
                "--auth-htpasswd-encryption", "plain",
                "--auth-delay", "0",  # a refused login is answered at once, not after a second
            ]  # fmt: skip
        else:
            auth = ["--auth-type", "none", "--rights-type", "from_file", "--rights-file", str(rights)]
        for _ in range(attempts):
            port = _free_port()
            command = [
                sys.executable, "-m", "radicale",
                "--config", "",  # ignore any system or user configuration
                "--server-hosts", f"127.0.0.1:{port}",
                "--storage-filesystem-folder", str(self.folder / "collections"),
                *auth,
                "--logging-level", "warning",
            ]  # fmt: skip
            with self._log.open("ab") as log:
                self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_until_ready():
                return self
            self.stop()
        raise RuntimeError(f"Radicale did not start; its log:\n{self._log.read_text(errors='replace')}")

    def _wait_until_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                httpx.get(self.url + "/", timeout=1.0)
                return True
            except httpx.TransportError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def new_calendar(self, name: str | None = None) -> str:
        """Create a calendar collection (MKCALENDAR) under the test user and return its URL."""
        url = f"{self.url}/{USERNAME}/{name or uuid.uuid4().hex[:12]}/"
        auth = (USERNAME, PASSWORD) if self.auth else None
        if not self.auth:
            # A login creates the user's own collection; without one, it is made here.
            httpx.request("MKCOL", f"{self.url}/{USERNAME}/", timeout=5.0)
        response = httpx.request("MKCALENDAR", url, auth=auth, timeout=5.0)
        if response.status_code != 201:
            raise RuntimeError(f"MKCALENDAR {url} answered {response.status_code}: {response.text}")
        return url

