"""End to end: openai-agents with its default model class (the Responses API), a function
tool, through the proxy to an upstream that speaks Responses and to one that does not."""

import pytest
from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI

from conftest import MASTER_KEY


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("model", ["via-openai", "via-anthropic"])
def test_an_agent_runs_its_tool_loop(dialect_proxy, model):
    # No internet: traces would go to OpenAI.
    set_tracing_disabled(True)
    set_default_openai_client(AsyncOpenAI(base_url=dialect_proxy["base_url"], api_key=MASTER_KEY, max_retries=0),
                              use_for_tracing=False)
    agent = Agent(name="weather", instructions="Answer with the tool.", model=model, tools=[get_weather])
    result = Runner.run_sync(agent, "Weather in Paris?")
    assert result.final_output == "The weather in Paris is sunny in Paris."
    assert any(item.type == "tool_call_output_item" for item in result.new_items)
