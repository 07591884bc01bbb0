"""End to end: the official `openai` SDK's Responses API through the proxy, against an upstream
that speaks it (openai: relayed natively) and two that do not (anthropic, gemini: translated).
The proxy keeps every response, so `previous_response_id`, retrieve, input_items and delete
work on both; the fake upstream keeps nothing and refuses a `previous_response_id`, so a
passing tool loop proves the proxy sent the conversation itself.
"""

import http.client
import json
import urllib.parse

import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

import fake_providers
from conftest import MASTER_KEY

UPSTREAMS = {"openai": "responses", "anthropic": "anthropic", "gemini": "gemini"}  # provider -> the fake's route
TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather", "strict": False,
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway["base_url"], api_key=MASTER_KEY, max_retries=0)


def upstream_body(provider):
    return json.loads(fake_providers.LAST[UPSTREAMS[provider]]["body"])


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_string_input_with_instructions_and_metadata(client, provider):
    response = client.responses.create(model=f"via-{provider}", input="hello", instructions="Be brief.",
                                       metadata={"ticket": "e2e-1"})
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Echo: hello"
    assert response.metadata == {"ticket": "e2e-1"}
    assert response.usage.total_tokens > 0
    sent = upstream_body(provider)
    where = {"openai": lambda: sent["instructions"], "anthropic": lambda: sent["system"],
             "gemini": lambda: sent["systemInstruction"]["parts"][0]["text"]}
    assert where[provider]() == "Be brief."


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_item_input(client, provider):
    response = client.responses.create(model=f"via-{provider}", input=[
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Echo: first"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "second"}]},
    ])
    assert response.output_text == "Echo: second"
    assert response.output[0].type == "message" and response.output[0].role == "assistant"


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_stream_helper(client, provider):
    with client.responses.stream(model=f"via-{provider}", input="stream this please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Echo: stream this please"
    assert final.output_text == "Echo: stream this please"


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_parse_into_a_pydantic_model(client, provider):
    response = client.responses.parse(model=f"via-{provider}", input="Name a city.", text_format=City)
    assert response.output_parsed == City(name="Name a city.", population=42)


@pytest.mark.parametrize("provider", UPSTREAMS)
@pytest.mark.parametrize("streamed", [False, True])
def test_function_tool_loop_with_previous_response_id(client, provider, streamed):
    kwargs = dict(model=f"via-{provider}", input="What's the weather in Paris?", tools=TOOLS)
    if streamed:
        with client.responses.stream(**kwargs) as stream:
            first = stream.get_final_response()
    else:
        first = client.responses.create(**kwargs)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(model=f"via-{provider}", previous_response_id=first.id, tools=TOOLS,
                                     input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}])
    assert second.output_text == "The weather in Paris is sunny."


# A native upstream is sent the whole conversation, not the id, and echoes none: the proxy
# relays its bytes untouched. Translated answers are the proxy's own and name it.
NATIVE_ECHO = "known gap: a native Responses upstream gets the expanded conversation, so its answer names no previous_response_id"


@pytest.mark.parametrize("provider", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=NATIVE_ECHO)) if p == "openai" else p
                                      for p in UPSTREAMS])
def test_a_continued_response_names_its_previous_response(client, provider):
    first = client.responses.create(model=f"via-{provider}", input="one")
    second = client.responses.create(model=f"via-{provider}", input="two", previous_response_id=first.id)
    assert second.output_text == "Echo: two"
    assert second.previous_response_id == first.id


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_retrieve_input_items_and_delete(client, provider):
    created = client.responses.create(model=f"via-{provider}", input="keep me")
    assert client.responses.retrieve(created.id).output_text == "Echo: keep me"
    items = list(client.responses.input_items.list(created.id))
    assert [(i.type, i.role) for i in items] == [("message", "user")]
    assert items[0].content[0].text == "keep me"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_unknown_model_and_wrong_key(gateway, client):
    with pytest.raises(openai.NotFoundError) as error:
        client.responses.create(model="no-such-model", input="x")
    assert error.value.code == "model_not_found"
    wrong = openai.OpenAI(base_url=gateway["base_url"], api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.responses.create(model="via-openai", input="x")


def test_a_websocket_upgrade_is_426(gateway):
    """Codex tries a WebSocket first; 426 sends it to plain HTTP at once."""
    url = urllib.parse.urlsplit(gateway["base_url"])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("GET", "/v1/responses", headers={
        "Authorization": f"Bearer {MASTER_KEY}", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert connection.getresponse().status == 426


@pytest.mark.parametrize("provider", UPSTREAMS)
@pytest.mark.parametrize("tools", [None, TOOLS], ids=["text", "tool"])
def test_answers_and_events_validate_against_the_sdk_types(client, provider, tools):
    """The SDK parses leniently; a strict validation catches a missing or mistyped field."""
    kwargs = dict(model=f"via-{provider}", input="What's the weather in Paris?", **({"tools": tools} if tools else {}))
    Response.model_validate_json(client.responses.with_raw_response.create(**kwargs).text)
    with client.responses.with_streaming_response.create(stream=True, **kwargs) as answer:
        events = [EVENT.validate_json(line[6:]) for line in answer.iter_lines() if line.startswith("data: ")]
    assert events[-1].type == "response.completed"
