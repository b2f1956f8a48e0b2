"""Every server the tests and benchmarks start (daphne, nginx, a private redis-server) is one
ManagedProcess: ready when it answers, stopped exactly, its log read back when it fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import DaphneServer, ManagedProcess, NginxServer


class Script(ManagedProcess):
    """A Python one-liner standing in for a server: it answers once ``ready_file`` exists."""

    name = "script"

    def __init__(self, tmp_path: Path, code: str):
        self.log_path = tmp_path / "script.log"
        self.ready_file = tmp_path / "ready"
        self.code = code

    def start(self, timeout: float = 10) -> Script:
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-c", self.code], stdout=self._log, stderr=subprocess.STDOUT)
        self.wait_ready(timeout)
        return self

    def answers(self) -> bool:
        return self.ready_file.exists()

    def log_paths(self) -> list[Path]:
        return [self.log_path]


def test_it_is_the_one_base_of_every_server_started():
    assert issubclass(DaphneServer, ManagedProcess) and issubclass(NginxServer, ManagedProcess)
    for duplicate in ("stop", "log_tail", "wait_ready", "__enter__", "__exit__"):
        assert duplicate not in vars(DaphneServer) and duplicate not in vars(NginxServer), duplicate


def test_it_waits_until_the_process_answers_and_stops_exactly_it(tmp_path):
    code = f"import pathlib, time; print('up', flush=True); pathlib.Path({str(tmp_path / 'ready')!r}).touch(); time.sleep(60)"
    with Script(tmp_path, code) as script:
        assert script.process.poll() is None
    assert script.process.returncode is not None
    assert script.log_tail() == "up"
    assert script._log is None


def test_it_names_the_exit_code_and_shows_the_log_when_the_process_dies_before_answering(tmp_path):
    script = Script(tmp_path, "import sys; print('no such setting', flush=True); sys.exit(3)")
    with pytest.raises(RuntimeError, match=r"script exited with 3:\nno such setting"):
        script.start()
    script.stop()


def test_it_stops_a_process_that_never_answers_and_says_so(tmp_path):
    script = Script(tmp_path, "import time; time.sleep(60)")
    with pytest.raises(RuntimeError, match=r"script was not ready within 0.3s:\n\(no log\)"):
        script.start(timeout=0.3)
    assert script.process.returncode is not None
