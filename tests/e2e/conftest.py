"""Session fixtures for the real-client tests: the fake upstream (fake_providers.py) and one
proxy in front of it, started once, with a master key and a model per upstream dialect.

`via-<provider>` serves the fake model from that provider; `overloaded-<provider>` and
`limited-<provider>` are upstreams that always answer overloaded / rate limited (each on a
provider of its own, so their pauses and ejections touch no other model);
`overloaded-then-openai` fails over from an overloaded Anthropic deployment to OpenAI.
"""

import pytest

import fake_providers
import offline
from fake_model import OVERLOADED, RATE_LIMITED
from proxy_process import running_proxy

MASTER_KEY = "sk-e2e-clients-master"
UPSTREAM_MODEL = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


@pytest.fixture(scope="session")
def upstream():
    server = fake_providers.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def gateway(upstream, tmp_path_factory):
    """{"base_url" (ends in /v1), "root" (without it), "logs"}."""
    keys = fake_providers.KEYS
    base_url = {"openai": f"{upstream}/openai/v1", "anthropic": upstream, "gemini": upstream}
    providers, models = [], []
    for kind in ("openai", "anthropic", "gemini"):
        provider = f"{{type: {kind}, api_key: {keys[kind]}, base_url: \"{base_url[kind]}\"}}"
        providers.append(f"  {kind}: {provider}")
        models.append(f"  via-{kind}: {{providers: {{{kind}: {{model_id: {UPSTREAM_MODEL[kind]}}}}}}}")
        for name, model_id in (("overloaded", OVERLOADED), ("limited", RATE_LIMITED)):
            providers.append(f"  {kind}_{name}: {provider}")
            models.append(f"  {name}-{kind}: {{providers: {{{kind}_{name}: {{model_id: {model_id}}}}}}}")
    models.append("  overloaded-then-openai: {providers: {anthropic_overloaded: {priority: 0, model_id: %s},"
                  " openai: {priority: 1, model_id: %s}}}" % (OVERLOADED, UPSTREAM_MODEL["openai"]))
    config = tmp_path_factory.mktemp("clients") / "config.yaml"
    config.write_text(f"""
server: {{master_key: {MASTER_KEY}}}
router: {{failure_threshold: 1, cooldown_seconds: 600}}
providers:
{chr(10).join(providers)}
models:
{chr(10).join(models)}
""")
    with running_proxy(config, secrets=[MASTER_KEY, *keys.values()]) as running:
        yield {**running, "root": running["base_url"].removesuffix("/v1")}


@pytest.fixture(scope="session")
def refuser():
    """The outbound proxy the Node clients and CLIs are pointed at (offline.py)."""
    server = offline.start()
    yield server
    server.shutdown()
