"""End to end: Claude Code (`claude -p … --output-format json`, the npm package pinned in
node/package-lock.json) through the proxy, against anthropic (pass-through) and openai
(translated), with the master key as ANTHROPIC_API_KEY (x-api-key) or ANTHROPIC_AUTH_TOKEN
(Bearer). It runs in a throwaway HOME and config dir with every switch that keeps it off the
network, behind a proxy that refuses anything but 127.0.0.1; in print mode with a key it needs
no onboarding or login file. Its main and small/fast models are pinned to the proxy's names.
"""

import json

import pytest

from conftest import MASTER_KEY
from node_tools import installed, logged_requests, run

OFFLINE = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
           "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1", "DISABLE_NON_ESSENTIAL_MODEL_CALLS": "1",
           "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1", "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1"}



def claude():
    """The native binary the package's postinstall puts at bin/claude.exe (or its wrapper)."""
    exe = installed("@anthropic-ai/claude-code/bin/claude.exe")
    if exe.read_bytes()[:4] == b"\x7fELF":
        return [exe]
    return ["node", installed("@anthropic-ai/claude-code/cli-wrapper.cjs")]


@pytest.mark.parametrize("key_variable", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_print_mode_says_hi(gateway, refuser, tmp_path, provider, key_variable):
    model = f"via-{provider}"
    env = {**OFFLINE, "CLAUDE_CONFIG_DIR": tmp_path / ".claude", "ANTHROPIC_BASE_URL": gateway["root"],
           key_variable: MASTER_KEY, "ANTHROPIC_MODEL": model, "ANTHROPIC_SMALL_FAST_MODEL": model,
           "ANTHROPIC_DEFAULT_HAIKU_MODEL": model, "ANTHROPIC_DEFAULT_SONNET_MODEL": model, "ANTHROPIC_DEFAULT_OPUS_MODEL": model}
    before = len(gateway["logs"])
    done = run([*claude(), "-p", "say hi", "--output-format", "json"], tmp_path, refuser, env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["is_error"] is False, result["result"]
    # The fake echoes the last user turn: Claude Code's reminders, then the prompt.
    assert result["result"].startswith("Echo: ") and result["result"].endswith("say hi")
    assert set(result["modelUsage"]) == {model}
    assert {p for _, p, _ in logged_requests(gateway, before, 1)} <= {"/v1/messages", "/v1/messages/count_tokens"}
    assert done.outbound == [], "Claude Code tried to reach the internet"
