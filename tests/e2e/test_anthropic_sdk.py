"""End to end: the official `anthropic` SDK's Messages API through the proxy, against an
Anthropic upstream (relayed byte for byte) and OpenAI and Gemini ones (translated), with the proxy's
master key sent as `x-api-key`, as the SDK does. Errors must raise the SDK's own classes.
"""

import json

import anthropic
import pydantic
import pytest
from anthropic._constants import ANTHROPIC_API_VERSION

import fake_providers
from conftest import MASTER_KEY, UPSTREAM_MODEL
from fake_model import count_words

PROVIDERS = ["anthropic", "openai", "gemini"]
TOOLS = [{"name": "get_weather", "description": "Current weather",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)


@pytest.fixture(scope="module")
def client(gateway):
    return anthropic.Anthropic(base_url=gateway["root"], api_key=MASTER_KEY, max_retries=0)


def last_anthropic_request():
    last = fake_providers.LAST["anthropic"]
    return last["headers"], json.loads(last["body"])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("system", ["Be brief.", [{"type": "text", "text": "Be brief."}]], ids=["string", "blocks"])
def test_create_with_a_system_prompt(client, provider, system):
    message = client.messages.create(model=f"via-{provider}", max_tokens=100, system=system,
                                     messages=[{"role": "user", "content": "hello"}])
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Echo: hello"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_helper(client, provider):
    with client.messages.stream(model=f"via-{provider}", max_tokens=100,
                                messages=[{"role": "user", "content": "stream this please"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: stream this please"
    assert final.content[0].text == text and final.stop_reason == "end_turn"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
def test_tool_use_then_tool_result(client, provider, streamed):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    kwargs = dict(model=f"via-{provider}", max_tokens=100, tools=TOOLS, messages=messages)
    if streamed:
        with client.messages.stream(**kwargs) as stream:
            first = stream.get_final_message()
    else:
        first = client.messages.create(**kwargs)
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]
    second = client.messages.create(model=f"via-{provider}", max_tokens=100, tools=TOOLS, messages=messages)
    assert second.content[0].text == "The weather in Paris is sunny."
    assert second.stop_reason == "end_turn"


def test_pass_through_leaves_the_body_and_the_anthropic_headers_untouched(client):
    request = {"max_tokens": 100, "messages": [{"role": "user", "content": "hello"}],
               "system": [{"type": "text", "text": "A long, cached preamble.", "cache_control": {"type": "ephemeral"}}]}
    message = client.messages.create(model="via-anthropic", **request, extra_body={"future_field": {"kept": True}},
                                     extra_headers={"anthropic-beta": "e2e-beta-2025-01-01"})
    assert message.content[0].text == "Echo: hello"
    headers, body = last_anthropic_request()
    assert body == {**request, "model": UPSTREAM_MODEL["anthropic"], "future_field": {"kept": True}}
    assert headers["anthropic-version"] == ANTHROPIC_API_VERSION, "the client's version, not the proxy's"
    assert headers["anthropic-beta"] == "e2e-beta-2025-01-01"
    assert headers["x-api-key"] == fake_providers.KEYS["anthropic"], "the provider's key, not the client's"


def test_thinking_blocks_round_trip_with_their_signature(client):
    messages = [{"role": "user", "content": "think first"}]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = client.messages.create(model="via-anthropic", max_tokens=2000, thinking=thinking, messages=messages)
    assert [b.type for b in first.content] == ["thinking", "text"]
    assert first.content[0].signature == fake_providers.SIGNATURE
    # The fake refuses a thinking block whose signature changed on the way.
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": "and again"}]
    second = client.messages.create(model="via-anthropic", max_tokens=2000, thinking=thinking, messages=messages)
    assert second.content[1].text == "Echo: and again"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_count_tokens(client, provider):
    request = {"system": "Be very brief.", "messages": [{"role": "user", "content": "one two three four"}], "tools": TOOLS}
    counted = client.messages.count_tokens(model=f"via-{provider}", **request)
    if provider == "anthropic":
        assert counted.input_tokens == count_words(request), "Anthropic's own count, relayed"
    else:
        assert counted.input_tokens > 0, "the proxy's estimate"


def test_a_wrong_key_is_an_authentication_error(gateway):
    wrong = anthropic.Anthropic(base_url=gateway["root"], api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as error:
        wrong.messages.create(model="via-anthropic", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert error.value.body["error"]["type"] == "authentication_error"
    assert "sk-ant-wrong" not in str(error.value)


def test_an_unknown_model_is_not_found(client):
    with pytest.raises((anthropic.NotFoundError, anthropic.BadRequestError)) as error:
        client.messages.create(model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert error.value.body["type"] == "error"


def test_failover_from_an_overloaded_anthropic_to_openai(client):
    message = client.messages.create(model="overloaded-then-openai", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Echo: hi"


def test_a_server_tool_a_translated_upstream_cannot_run_is_a_bad_request(client):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="via-openai", max_tokens=5, messages=[{"role": "user", "content": "hi"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_upstream_overloaded_is_an_overloaded_error(client, provider):
    with pytest.raises(anthropic.InternalServerError) as error:
        client.messages.create(model=f"overloaded-{provider}", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert isinstance(error.value, anthropic.OverloadedError), error.value
    assert error.value.status_code == 529
    assert error.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_rate_limited_upstream_is_a_rate_limit_error(client, provider):
    with pytest.raises(anthropic.RateLimitError) as error:
        client.messages.create(model=f"limited-{provider}", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert error.value.body["error"]["type"] == "rate_limit_error"
    assert int(error.value.response.headers["retry-after"]) > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answers_and_events_validate_against_the_sdk_types(client, provider):
    """The SDK parses leniently; a strict validation catches a missing or mistyped field."""
    kwargs = dict(model=f"via-{provider}", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "weather?"}])
    raw = client.messages.with_raw_response.create(**kwargs)
    anthropic.types.Message.model_validate_json(raw.http_response.text)
    with client.messages.with_streaming_response.create(stream=True, **kwargs) as answer:
        lines = [line[6:] for line in answer.iter_lines() if line.startswith("data: ") and '"type":"ping"' not in line.replace(" ", "")]
    events = [EVENT.validate_json(line) for line in lines]
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
