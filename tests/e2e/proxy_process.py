"""Runs the release binary as a real process on a free port, for the end-to-end tests."""

import contextlib
import os
import re
import signal
import subprocess
import threading
import time


@contextlib.contextmanager
def running_proxy(config_path, secrets=()):
    """Starts the proxy on `config_path`; yields {"base_url", "logs"}. On exit: SIGTERM, a
    clean exit code, and none of `secrets` in the logs."""
    binary = os.environ.get("LLM_PROXY_BIN", "target/release/llm-proxy")
    process = subprocess.Popen(
        [binary, "--config", str(config_path), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    address = None
    deadline = time.monotonic() + 20
    lines = []
    while address is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"listening addr=(\S+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
        if match:
            address = match.group(1)
    if address is None:
        process.kill()
        raise AssertionError("the proxy did not start:\n" + "".join(lines))
    logs = []
    drain = threading.Thread(target=lambda: logs.extend(process.stdout), daemon=True)
    drain.start()
    try:
        yield {"base_url": f"http://{address}/v1", "logs": logs}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        drain.join(timeout=5)
    assert code == 0, "".join(logs)
    text = "".join(logs)
    for secret in secrets:
        assert secret not in text, "a secret reached the logs"
