"""End to end: the Vercel AI SDK's default OpenAI provider, `createOpenAI({baseURL, apiKey})(model)`,
which speaks the Responses API, through the proxy: generateText, streamText and a tool the
SDK executes, against openai (native) and anthropic (translated). The script is node/ai_sdk.mjs.
"""

import json

import pytest

from conftest import MASTER_KEY
from node_tools import NODE_DIR, installed, logged_requests, run


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_generate_stream_and_a_tool(gateway, refuser, tmp_path, provider):
    installed("ai")
    before = len(gateway["logs"])
    done = run(["node", NODE_DIR / "ai_sdk.mjs", gateway["base_url"], MASTER_KEY, f"via-{provider}"], tmp_path, refuser)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {
        "generated": "Echo: hello from ai sdk",
        "streamed": "Echo: stream from ai sdk", "streamedFinish": "stop",
        "toolCities": ["Paris"], "toolSteps": 2, "toolText": "The weather in Paris is sunny.",
    }
    assert done.outbound == [], "nothing but the proxy was called"
    assert {(m, p) for m, p, _ in logged_requests(gateway, before, 4)} == {("POST", "/v1/responses")}, "the default provider speaks Responses"
