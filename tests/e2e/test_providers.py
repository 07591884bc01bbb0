"""End to end: the same conversation, through the official `openai` Python SDK, against each
provider type behind the proxy — plain, streamed, a tool call round trip and an image — and
failover between providers of different wire formats.

The upstreams are a local fake speaking each provider's wire format (fake_providers.py);
nothing here reaches the internet.
"""

import base64
import json

import openai
import pytest

import fake_providers
from proxy_process import running_proxy

PROVIDERS = ["openai", "azure", "anthropic", "gemini"]
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    upstream = fake_providers.start()
    base = f"http://127.0.0.1:{upstream.server_port}"
    keys = fake_providers.KEYS
    config = tmp_path_factory.mktemp("providers") / "config.yaml"
    config.write_text(f"""
router: {{failure_threshold: 1, cooldown_seconds: 600}}
providers:
  openai: {{type: openai, api_key: {keys['openai']}, base_url: "{base}/openai/v1"}}
  azure: {{type: azure, api_key: {keys['azure']}, base_url: "{base}"}}
  anthropic: {{type: anthropic, api_key: {keys['anthropic']}, base_url: "{base}"}}
  gemini: {{type: gemini, api_key: {keys['gemini']}, base_url: "{base}"}}
  broken_claude: {{type: anthropic, api_key: wrong-key, base_url: "{base}"}}
models:
  via-openai: {{providers: {{openai: {{model_id: gpt-4o}}}}}}
  via-azure: {{providers: {{azure: {{model_id: my-gpt4o-deployment}}}}}}
  via-anthropic: {{providers: {{anthropic: {{model_id: claude-sonnet-4-5}}}}}}
  via-gemini: {{providers: {{gemini: {{model_id: gemini-2.5-flash}}}}}}
  claude-then-gemini: {{providers: {{broken_claude: {{priority: 0, model_id: claude-x}}, gemini: {{priority: 1, model_id: gemini-2.5-flash}}}}}}
""")
    with running_proxy(config, secrets=list(keys.values()) + ["wrong-key"]) as running:
        yield running
    upstream.shutdown()


@pytest.fixture()
def client(proxy):
    return openai.OpenAI(base_url=proxy["base_url"], api_key="unused", max_retries=0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain(client, provider):
    raw = client.chat.completions.with_raw_response.create(
        model=f"via-{provider}", temperature=1.5,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}])
    assert raw.headers["x-llm-proxy-provider"] == provider
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Echo: hello"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed(client, provider):
    stream = client.chat.completions.create(
        model=f"via-{provider}", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream this please"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: stream this please"
    assert [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role] == ["assistant"]
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    if provider != "azure" and provider != "openai":
        # Translated streams: the proxy writes the usage chunk when asked.
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
def test_tool_call_round_trip(client, provider, streamed):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    kwargs = dict(model=f"via-{provider}", messages=messages, tools=TOOLS)
    if streamed:
        with client.chat.completions.stream(**kwargs) as stream:
            first = stream.get_final_completion()
    else:
        first = client.chat.completions.create(**kwargs)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.id
    assert json.loads(call.function.arguments) == {"city": "Paris"}, "arguments reassemble into valid JSON"
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = client.chat.completions.create(model=f"via-{provider}", messages=messages, tools=TOOLS, tool_choice="none")
    assert second.choices[0].message.content == "The weather in Paris is sunny."
    assert second.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_image(client, provider):
    completion = client.chat.completions.create(model=f"via-{provider}", messages=[
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": PNG}}]}])
    assert completion.choices[0].message.content == "I see a image/png image."


def test_failover_between_wire_formats_is_invisible(client):
    raw = client.chat.completions.with_raw_response.create(
        model="claude-then-gemini", messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["x-llm-proxy-provider"] == "gemini"
    assert raw.headers["x-llm-proxy-attempts"] == "2"
    assert raw.parse().choices[0].message.content == "Echo: hello"


def test_an_unsupported_field_is_a_clear_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="via-anthropic", logprobs=True, messages=[{"role": "user", "content": "x"}])
    assert error.value.param == "logprobs"
    assert "Anthropic" in error.value.message
