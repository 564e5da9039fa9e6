"""Start, wait for and always clean up the training tests' subprocesses."""

import os
import signal
import socket
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))


def free_ports(count):
    """``count`` distinct TCP ports that were free on 127.0.0.1 a moment ago (bound to port 0, released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Script:
    """One script run in its own process group, its output captured in ``log_path``."""

    def __init__(self, script, args, log_path, extra_env=None):
        env = dict(os.environ)
        env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "PYTHONUNBUFFERED": "1"})
        env.pop("TF_CONFIG", None)
        env.update(extra_env or {})
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(SCRIPTS_DIR, script), *map(str, args)],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def running(self):
        return self.process.poll() is None

    def kill(self):
        """SIGKILL the script's process group (only processes this object started) and reap it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def output(self, limit=4000):
        self._log.flush()
        with open(self.log_path, "rb") as file:
            text = file.read().decode("utf-8", "replace")
        lines = [
            line
            for line in text.splitlines()
            if not line.startswith(("I0000", "W0000", "E0000", "WARNING: All"))
        ]
        return "\n".join(lines)[-limit:]


def wait_all(scripts, timeout):
    """Wait until every script exits (or ``timeout`` s pass); fail with their output unless all exit 0."""
    deadline = time.monotonic() + timeout
    for script in scripts:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            script.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            details = "\n".join(f"--- {s.log_path}\n{s.output()}" for s in scripts)
            raise AssertionError(f"training scripts still running after {timeout} s\n{details}") from None
    failed = [s for s in scripts if s.process.returncode != 0]
    if failed:
        details = "\n".join(f"--- {s.log_path} (exit {s.process.returncode})\n{s.output()}" for s in failed)
        raise AssertionError(f"training scripts failed\n{details}")


def kill_all(scripts):
    for script in scripts:
        script.kill()
