"""Runs the Node clients and coding CLIs pinned in node/package-lock.json (installed there by
scripts/test with `npm ci`) as subprocesses, with a bounded timeout, in a throwaway HOME,
with the internet cut off (offline.py)."""

import os
import pathlib
import re
import subprocess
import time

import pytest

import offline

NODE_DIR = pathlib.Path(__file__).parent / "node"
TIMEOUT = 120


def installed(relative):
    """node_modules/RELATIVE, or a failure telling how to install it."""
    path = NODE_DIR / "node_modules" / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in {NODE_DIR} (scripts/test does)")
    return path


def logged_requests(gateway, start, count):
    """(method, path, status) of the proxy's request log lines from index `start` on, once
    `count` are in (the logs are read by a thread: polled, with a bounded deadline)."""
    pattern = re.compile(r' method="(\w+)" path="([^"]+)"(?: \S+)*? status=(\d+)')
    deadline = time.monotonic() + 10
    while True:
        found = [m.groups() for line in gateway["logs"][start:] for m in [pattern.search(line)] if m]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def run(argv, home, refuser, env=(), cwd=None):
    """Runs argv with only PATH, a fresh HOME and `env`; returns the CompletedProcess, its
    `outbound` set to the outside hosts the process asked for (all refused)."""
    before = len(offline.Refuser.attempts)
    environment = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1",
                   **offline.environment(refuser), **dict(env)}
    done = subprocess.run([str(a) for a in argv], cwd=cwd or home, env=environment, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)
    done.outbound = sorted({attempt.split(" ", 1)[1] for attempt in offline.Refuser.attempts[before:]})
    return done
