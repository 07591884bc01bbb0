"""End to end: the official Node SDKs through the proxy — `openai` on the Responses API and
`@anthropic-ai/sdk` on the Messages API, plain and streamed — against openai and anthropic
upstreams (each SDK meets one pass-through and one translated). The script is node/sdks.mjs.
"""

import json

import pytest

from conftest import MASTER_KEY
from node_tools import NODE_DIR, installed, run


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_responses_and_messages(gateway, refuser, tmp_path, provider):
    installed("openai")
    installed("@anthropic-ai/sdk")
    done = run(["node", NODE_DIR / "sdks.mjs", gateway["root"], MASTER_KEY, f"via-{provider}"], tmp_path, refuser)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "responsesText": "Echo: hello from node", "responsesStreamed": "Echo: stream from node",
        "responsesLast": "response.completed",
        "messagesText": "Echo: hello claude", "messagesStreamed": "Echo: stream claude", "messagesFinal": "Echo: stream claude",
    }
    assert done.outbound == []
