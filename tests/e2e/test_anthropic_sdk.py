"""End to end: the official `anthropic` SDK's Messages API through the proxy — create, stream,
tools, count_tokens, its error classes — against an Anthropic upstream (relayed byte for byte)
and upstreams of other dialects (translated)."""

import anthropic
import pytest

import fake_providers
from conftest import MASTER_KEY

MODELS = ["via-anthropic", "via-openai", "via-gemini"]
TOOLS = [{"name": "get_weather", "description": "Current weather",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture()
def client(dialect_proxy):
    return anthropic.Anthropic(base_url=dialect_proxy["root_url"], api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_create_with_system_as_string_and_blocks(client, model):
    message = client.messages.create(model=model, max_tokens=256, system="Be brief.",
                                     messages=[{"role": "user", "content": "hello there"}])
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text == "Echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    blocks = client.messages.create(model=model, max_tokens=256, system=[{"type": "text", "text": "Be brief."}],
                                    messages=[{"role": "user", "content": [{"type": "text", "text": "again"}]}])
    assert blocks.content[0].text == "Echo: again"


@pytest.mark.parametrize("model", MODELS)
def test_stream_text_and_final_message(client, model):
    with client.messages.stream(model=model, max_tokens=256, messages=[{"role": "user", "content": "stream this please"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: stream this please"
    assert final.content[0].text == text and final.stop_reason == "end_turn"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_use_round_trip(client, model, stream):
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with client.messages.stream(model=model, max_tokens=256, tools=TOOLS, messages=ask) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(model=model, max_tokens=256, tools=TOOLS, messages=ask)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    second = client.messages.create(model=model, max_tokens=256, tools=TOOLS, messages=ask + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ])
    assert second.content[0].text == "The weather in Paris is sunny."


@pytest.mark.parametrize("model", ["via-anthropic", "via-openai"])
def test_count_tokens(client, model):
    counted = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Hello, how are you today?"}])
    assert 1 <= counted.input_tokens < 100


def test_pass_through_keeps_cache_control_and_new_fields(client):
    client.messages.create(model="via-anthropic", max_tokens=64,
                           system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                           messages=[{"role": "user", "content": "hi"}], extra_body={"x_new_field": {"a": 1}},
                           extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    sent = fake_providers.LAST["/v1/messages"]
    assert sent["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["body"]["x_new_field"] == {"a": 1}
    assert sent["body"]["model"] == "claude-sonnet-4-5"
    assert sent["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert sent["headers"]["x-api-key"] == fake_providers.KEYS["anthropic"], "the proxy's key, never the client's"


def test_failover_from_an_overloaded_anthropic_to_openai(client):
    message = client.messages.create(model="overloaded-then-openai", max_tokens=64,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Echo: hi"


def test_errors_raise_the_sdks_own_classes(client, dialect_proxy):
    bad = anthropic.Anthropic(base_url=dialect_proxy["root_url"], api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="via-anthropic", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.OverloadedError) as error:
        client.messages.create(model="only-overloaded", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert error.value.status_code == 529
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="via-openai", max_tokens=5, messages=[{"role": "user", "content": "hi"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])
