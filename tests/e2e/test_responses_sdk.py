"""End to end: the official `openai` SDK's Responses API through the proxy — create, stream,
parse, a tool loop with `previous_response_id`, retrieve, input items, delete — against an
upstream that speaks Responses (relayed untouched) and ones that do not (translated)."""

import json

import openai
import pydantic
import pytest

from conftest import MASTER_KEY

MODELS = ["via-openai", "via-anthropic", "via-gemini"]
TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture()
def client(dialect_proxy):
    return openai.OpenAI(base_url=dialect_proxy["base_url"], api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_create_with_string_and_item_input(client, model):
    response = client.responses.create(model=model, input="hello there", instructions="Be brief.", metadata={"run": "e2e"})
    assert response.status == "completed"
    assert response.output_text == "Echo: hello there"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    items = client.responses.create(model=model, input=[{"role": "user", "content": [{"type": "input_text", "text": "again"}]}])
    assert items.output_text == "Echo: again"


@pytest.mark.parametrize("model", MODELS)
def test_stream_events_and_final_response(client, model):
    with client.responses.stream(model=model, input="stream this please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "Echo: stream this please"


class Answer(pydantic.BaseModel):
    text: str


def test_parse_structured_output_on_the_native_upstream(client):
    # The fake model echoes; the schema reaches OpenAI as the client sent it.
    response = client.responses.create(model="via-openai", input='{"text": "hi"}',
                                       text={"format": {"type": "json_schema", "name": "Answer", "strict": True,
                                                        "schema": Answer.model_json_schema() | {"additionalProperties": False}}})
    assert response.output_text.startswith("Echo: ")


@pytest.mark.parametrize("model", MODELS)
def test_a_tool_loop_with_previous_response_id(client, model):
    first = client.responses.create(model=model, input="Weather in Paris?", tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(model=model, previous_response_id=first.id, tools=TOOLS,
                                     input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}])
    assert second.output_text == "The weather in Paris is sunny."


@pytest.mark.parametrize("model", ["via-openai", "via-anthropic"])
def test_retrieve_input_items_and_delete(client, model):
    created = client.responses.create(model=model, input="remember me")
    got = client.responses.retrieve(created.id)
    assert got.id == created.id and got.output_text == "Echo: remember me"
    items = client.responses.input_items.list(created.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == "remember me"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_errors_are_openais(client, dialect_proxy):
    with pytest.raises(openai.NotFoundError) as error:
        client.responses.create(model="no-such-model", input="hi")
    assert error.value.code == "model_not_found"
    bad = openai.OpenAI(base_url=dialect_proxy["base_url"], api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="via-openai", input="hi")
