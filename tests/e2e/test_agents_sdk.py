"""End to end: the `openai-agents` SDK with its default model class (the Responses API) through
the proxy, native (openai) and translated (anthropic), running a function tool loop.
Tracing is off: the SDK would otherwise upload traces to OpenAI.
"""

import json

import agents
import pytest
from openai import AsyncOpenAI

import fake_providers
from conftest import MASTER_KEY

UPSTREAMS = {"openai": "responses", "anthropic": "anthropic"}  # provider -> the fake's route
calls = []


@agents.function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    calls.append(city)
    return "sunny"


@pytest.fixture(scope="module", autouse=True)
def default_client(gateway):
    agents.set_tracing_disabled(True)
    agents.set_default_openai_client(AsyncOpenAI(base_url=gateway["base_url"], api_key=MASTER_KEY, max_retries=0),
                                     use_for_tracing=False)


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_a_plain_answer(provider):
    agent = agents.Agent(name="echo", instructions="Be brief.", model=f"via-{provider}")
    result = agents.Runner.run_sync(agent, "hello agents")
    assert result.final_output == "Echo: hello agents"


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_a_function_tool_loop(provider):
    calls.clear()
    agent = agents.Agent(name="weather", instructions="Use the tool.", model=f"via-{provider}", tools=[get_weather])
    result = agents.Runner.run_sync(agent, "What's the weather in Paris?")
    assert calls == ["Paris"], "the SDK ran the tool the model called"
    assert result.final_output == "The weather in Paris is sunny."
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    # The second turn reached the upstream carrying the tool's output.
    sent = json.loads(fake_providers.LAST[UPSTREAMS[provider]]["body"])
    assert "sunny" in json.dumps(sent)
