"""Shared fixtures: one fake upstream and one proxy (with a master key) for the dialect tests."""

import pytest

import fake_providers
from proxy_process import running_proxy

MASTER_KEY = "sk-master-e2e"


@pytest.fixture(scope="session")
def upstream():
    server = fake_providers.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def dialect_proxy(upstream, tmp_path_factory):
    """Models named for the upstream dialect behind them: `via-openai` (speaks Chat and
    Responses), `via-anthropic` (speaks Messages), `via-gemini`, and `overloaded-then-openai`
    (an Anthropic deployment answering 529, then OpenAI)."""
    base = f"http://127.0.0.1:{upstream.server_port}"
    keys = fake_providers.KEYS
    config = tmp_path_factory.mktemp("dialects") / "config.yaml"
    config.write_text(f"""
server: {{master_key: {MASTER_KEY}}}
providers:
  openai: {{type: openai, api_key: {keys['openai']}, base_url: "{base}/openai/v1"}}
  anthropic: {{type: anthropic, api_key: {keys['anthropic']}, base_url: "{base}"}}
  gemini: {{type: gemini, api_key: {keys['gemini']}, base_url: "{base}"}}
models:
  via-openai: {{providers: {{openai: {{model_id: gpt-4.1}}}}}}
  via-anthropic: {{providers: {{anthropic: {{model_id: claude-sonnet-4-5}}}}}}
  via-gemini: {{providers: {{gemini: {{model_id: gemini-2.5-flash}}}}}}
  overloaded-then-openai: {{providers: {{anthropic: {{priority: 0, model_id: claude-overloaded}}, openai: {{priority: 1, model_id: gpt-4.1}}}}}}
  only-overloaded: {{providers: {{anthropic: {{model_id: claude-overloaded}}}}}}
""")
    with running_proxy(config, secrets=list(keys.values())) as running:
        running["root_url"] = running["base_url"].removesuffix("/v1")
        yield running
