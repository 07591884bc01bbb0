"""End to end: the Codex CLI (`codex exec`, the npm package pinned in node/package-lock.json)
through the proxy as a custom Responses provider, against openai (native) and anthropic
(translated). With `supports_websockets` it first asks for a WebSocket on /v1/responses,
which the proxy answers 426, and streams over HTTP. CODEX_HOME is a throwaway directory holding only config.toml; update checks,
analytics and the startup plugin sync (which calls github.com and chatgpt.com) are off, and a
proxy that refuses anything but 127.0.0.1 shows nothing else is tried.
"""

import pytest

from conftest import MASTER_KEY
from node_tools import installed, logged_requests, run

CONFIG = """\
model = "{model}"
model_provider = "proxy"
check_for_update_on_startup = false
{extra}

[model_providers.proxy]
name = "llm-proxy"
base_url = "{base_url}"
wire_api = "responses"
env_key = "LLM_PROXY_KEY"
supports_websockets = true

[analytics]
enabled = false

[features]
plugins = false
"""
# OpenAI's hosted web search runs only where the upstream speaks Responses; the proxy refuses
# it elsewhere rather than pretend, so Codex in front of another dialect turns it off.
EXTRA = {"openai": "", "anthropic": 'web_search = "disabled"'}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_exec_says_hi(gateway, refuser, tmp_path, provider):
    codex_home, work = tmp_path / "codex", tmp_path / "work"
    codex_home.mkdir()
    work.mkdir()
    (codex_home / "config.toml").write_text(CONFIG.format(model=f"via-{provider}", base_url=gateway["base_url"], extra=EXTRA[provider]))
    before = len(gateway["logs"])
    done = run([installed(".bin/codex"), "exec", "--skip-git-repo-check", "say hi"], tmp_path, refuser,
               {"CODEX_HOME": codex_home, "LLM_PROXY_KEY": MASTER_KEY}, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "Echo: say hi"
    # It tried a WebSocket first (supports_websockets), was told 426, and streamed over HTTP.
    assert logged_requests(gateway, before, 2)[:2] == [("GET", "/v1/responses", "426"), ("POST", "/v1/responses", "200")]
    assert done.outbound == [], "Codex tried to reach the internet"
