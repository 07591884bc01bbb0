"""End to end: a provider's rate limit reaches the official `openai` SDK as a 429 it retries.

A single deployment whose upstream answers one 429 (`Retry-After: 1`) must not become a 503
with `x-should-retry: false`: the client gets `RateLimitError` when it does not retry, and its
own retry succeeds once the pause is over, as it would talking to OpenAI directly.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from proxy_process import running_proxy


class OnceLimited(BaseHTTPRequestHandler):
    """An OpenAI-compatible upstream: 429 with Retry-After on its first request, then answers."""

    protocol_version = "HTTP/1.1"
    calls = 0
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with OnceLimited.lock:
            OnceLimited.calls += 1
            first = OnceLimited.calls == 1
        if first:
            payload = json.dumps({"error": {"message": "Rate limit reached for requests", "type": "requests",
                                            "param": None, "code": "rate_limit_exceeded"}}).encode()
            self.send_response(429)
            self.send_header("Retry-After", "1")
        else:
            payload = json.dumps({
                "id": "chatcmpl-e2e", "object": "chat.completion", "created": 1700000000, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "after the pause"},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
            }).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), OnceLimited)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    config = tmp_path_factory.mktemp("e2e-limits") / "config.yaml"
    config.write_text(f"""
providers:
  limited: {{type: openai, base_url: "http://127.0.0.1:{upstream.server_port}/v1"}}
models:
  gpt-4o: {{providers: {{limited: {{}}}}}}
""")
    with running_proxy(config) as proxy:
        yield proxy
    upstream.shutdown()


def test_a_rate_limit_is_a_rate_limit_error_and_the_sdks_retry_succeeds(proxy):
    no_retry = openai.OpenAI(base_url=proxy["base_url"], api_key="unused", max_retries=0)
    with pytest.raises(openai.RateLimitError) as error:
        no_retry.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert error.value.status_code == 429
    assert error.value.code == "rate_limit_exceeded"
    assert error.value.response.headers["retry-after"] == "1"
    assert "x-should-retry" not in error.value.response.headers

    # Still paused: the proxy answers 429 itself, the SDK waits as told and retries.
    client = openai.OpenAI(base_url=proxy["base_url"], api_key="unused", max_retries=3)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "after the pause"
    assert raw.headers["x-llm-proxy-provider"] == "limited"
    assert raw.retries_taken >= 1
    assert OnceLimited.calls == 2, "the upstream saw the first request and the retry that succeeded"
