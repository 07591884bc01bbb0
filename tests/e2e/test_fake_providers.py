"""The fake upstream itself, without the proxy: what it answers on the Responses and Messages
routes validates against the official SDKs' own types, so the proxy is tested against the
real wire formats and not against the fake's idea of them.
"""

import json
import urllib.error
import urllib.request

import anthropic.types
import openai.types.responses as responses
import pydantic
import pytest

import fake_providers
from fake_model import count_words

KEYS = fake_providers.KEYS
TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
RESPONSE_EVENT = pydantic.TypeAdapter(responses.ResponseStreamEvent)
MESSAGE_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)


@pytest.fixture(scope="module")
def base():
    server = fake_providers.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def post(url, body, headers):
    """(status, parsed JSON or the list of SSE (event, data) pairs)."""
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
            status, kind = answer.status, answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    if kind != "text/event-stream":
        return status, json.loads(text)
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines.get("event"), json.loads(lines["data"])))
    return status, events


def openai_post(base, body):
    return post(f"{base}/openai/v1/responses", body, {"Authorization": f"Bearer {KEYS['openai']}"})


def anthropic_post(base, body, path="/v1/messages"):
    return post(f"{base}{path}", body, {"x-api-key": KEYS["anthropic"], "anthropic-version": "2023-06-01"})


def test_a_response_is_a_valid_response(base):
    status, body = openai_post(base, {"model": "gpt-4o", "input": "hello", "instructions": "Be brief.", "metadata": {"k": "v"}})
    assert status == 200
    response = responses.Response.model_validate(body)
    assert response.output_text == "Echo: hello"
    assert response.instructions == "Be brief." and response.metadata == {"k": "v"}


def test_a_response_stream_is_the_typed_event_sequence(base):
    status, events = openai_post(base, {"model": "gpt-4o", "input": [{"role": "user", "content": "hi there"}], "stream": True})
    assert status == 200
    parsed = [RESPONSE_EVENT.validate_python(data) for _, data in events]
    assert [name for name, _ in events] == [e.type for e in parsed]
    assert [e.sequence_number for e in parsed] == list(range(len(parsed)))
    assert parsed[0].type == "response.created" and parsed[-1].type == "response.completed"
    assert "".join(e.delta for e in parsed if e.type == "response.output_text.delta") == "Echo: hi there"
    assert parsed[-1].response.output_text == "Echo: hi there"


def test_a_streamed_function_call_and_its_output(base):
    _, events = openai_post(base, {"model": "gpt-4o", "input": "weather?", "tools": TOOLS, "stream": True})
    parsed = [RESPONSE_EVENT.validate_python(data) for _, data in events]
    assert "".join(e.delta for e in parsed if e.type == "response.function_call_arguments.delta") == '{"city": "Paris"}'
    call = parsed[-1].response.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    follow_up = [{"role": "user", "content": "weather?"}, call.model_dump(exclude_none=True),
                 {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    _, body = openai_post(base, {"model": "gpt-4o", "input": follow_up, "tools": TOOLS})
    assert responses.Response.model_validate(body).output_text == "The weather in Paris is sunny."


def test_an_orphan_function_call_output_or_a_previous_response_id_is_refused(base):
    status, body = openai_post(base, {"model": "gpt-4o", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "sunny"}]})
    assert status == 400 and "call_x" in body["error"]["message"]
    status, body = openai_post(base, {"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_unknown"})
    assert status == 400 and body["error"]["code"] == "previous_response_not_found"


def test_a_message_and_its_stream_are_valid_anthropic_types(base):
    request = {"model": "claude-x", "max_tokens": 100, "system": [{"type": "text", "text": "Be brief."}],
               "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [{"role": "user", "content": "hello"}]}
    status, body = anthropic_post(base, request)
    assert status == 200
    message = anthropic.types.Message.model_validate(body)
    assert [b.type for b in message.content] == ["thinking", "text"] and message.content[1].text == "Echo: hello"
    _, events = anthropic_post(base, {**request, "stream": True})
    parsed = [MESSAGE_EVENT.validate_python(data) for name, data in events if name != "ping"]
    assert parsed[0].type == "message_start" and parsed[-1].type == "message_stop"
    assert "".join(e.delta.text for e in parsed if e.type == "content_block_delta" and e.delta.type == "text_delta") == "Echo: hello"


def test_thinking_must_come_back_signed_and_count_tokens_counts_words(base):
    turn = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "forged"}]},
            {"role": "user", "content": "again"}]
    status, body = anthropic_post(base, {"model": "claude-x", "max_tokens": 10, "messages": turn})
    assert status == 400 and "signature" in body["error"]["message"]
    request = {"model": "claude-x", "system": "Be very brief.", "messages": [{"role": "user", "content": "one two three"}], "tools": ANTHROPIC_TOOLS}
    status, body = anthropic_post(base, request, "/v1/messages/count_tokens")
    assert status == 200
    assert body == {"input_tokens": count_words({k: request[k] for k in ("system", "messages", "tools")})}
    assert anthropic.types.MessageTokensCount.model_validate(body).input_tokens == 7  # 3 + 3 + the tool name
