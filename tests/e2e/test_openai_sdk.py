"""End to end: the official `openai` Python SDK against the release binary.

The proxy runs as a real process on a free port, in front of the built-in mock provider and
a tiny local upstream that breaks a stream halfway. Nothing here reaches the internet.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from proxy_process import running_proxy

MASTER_KEY = "sk-e2e-master-key"


class BreakingUpstream(BaseHTTPRequestHandler):
    """An OpenAI-compatible upstream whose streams stop after two chunks, with no [DONE]."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for text in ["Hel", "lo"]:
            chunk = {
                "id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1700000000,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), BreakingUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    config = tmp_path_factory.mktemp("e2e") / "config.yaml"
    config.write_text(f"""
server: {{master_key: {MASTER_KEY}}}
router: {{failure_threshold: 1, cooldown_seconds: 600}}
providers:
  mock: {{type: mock}}
  broken: {{type: mock, fail_status: 503}}
  breaking: {{type: openai, base_url: "http://127.0.0.1:{upstream.server_port}/v1"}}
models:
  echo: {{providers: {{mock: {{model_id: mock-echo}}}}}}
  failover: {{providers: {{broken: {{priority: 0}}, mock: {{priority: 1}}}}}}
  dead: {{providers: {{broken: {{priority: 0}}}}}}
  breaking: {{providers: {{breaking: {{priority: 0}}}}}}
""")
    with running_proxy(config, secrets=[MASTER_KEY]) as proxy:
        yield proxy
    upstream.shutdown()


@pytest.fixture()
def client(proxy):
    return openai.OpenAI(base_url=proxy["base_url"], api_key=MASTER_KEY)


def test_non_streaming_completion(client):
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "hello there"}], seed=7, n=1
    )
    assert raw.headers["x-llm-proxy-provider"] == "mock"
    assert raw.headers["x-llm-proxy-attempts"] == "1"
    assert raw.headers["x-request-id"]
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "mock-echo"
    assert completion.choices[0].message.content == "hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 2


def test_streaming_completion_with_usage(client):
    stream = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "stream me please"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 6


def test_stream_helper_accumulates_a_clean_message(client):
    with client.chat.completions.stream(model="echo", messages=[{"role": "user", "content": "a b c"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.role == "assistant"
    assert final.choices[0].message.content == "a b c"


def test_failover_is_invisible_to_the_client(client):
    raw = client.chat.completions.with_raw_response.create(
        model="failover", messages=[{"role": "user", "content": "still works"}]
    )
    assert raw.headers["x-llm-proxy-provider"] == "mock"
    assert raw.headers["x-llm-proxy-attempts"] in ("1", "2")
    assert raw.parse().choices[0].message.content == "still works"


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert error.value.code == "model_not_found"
    assert error.value.param == "model"


def test_wrong_key_is_an_authentication_error(proxy):
    bad = openai.OpenAI(base_url=proxy["base_url"], api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as error:
        bad.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert "sk-wrong" not in str(error.value)


def test_all_deployments_failing_is_an_internal_server_error_not_retried(client):
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as error:
        client.chat.completions.create(model="dead", messages=[{"role": "user", "content": "x"}])
    assert error.value.status_code == 503
    assert error.value.code == "all_deployments_failed"
    assert error.value.response.headers["x-should-retry"] == "false"
    # With x-should-retry: false the SDK does not back off and retry (≥ 0.5 s each).
    assert time.monotonic() - started < 0.5


def test_bad_request_is_a_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="echo", messages=[])
    assert error.value.param == "messages"


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["echo", "failover", "dead", "breaking"]
    assert client.models.retrieve("echo").owned_by == "llm-proxy"


def test_a_stream_broken_midway_raises_instead_of_ending_silently(client):
    stream = client.chat.completions.create(
        model="breaking", messages=[{"role": "user", "content": "x"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as error:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["Hel", "lo"]
    assert "interrupted" in error.value.message
