"""End to end: virtual keys with the official SDKs against the release binary and its
embedded SQLite store: the admin API makes the keys, the SDKs use them, the ledger and the
spend report account for every call, and spend survives a restart.
"""

import http.client
import json
import time
import urllib.parse
from decimal import Decimal

import anthropic
import openai
import pytest

from proxy_process import running_proxy

MASTER_KEY = "sk-e2e-governance-master"


def write_config(path, db):
    path.write_text(f"""
server: {{master_key: {MASTER_KEY}}}
store: {{url: "sqlite://{db}"}}
ledger: {{flush_interval_seconds: 0.05}}
providers:
  mock: {{type: mock}}
  broken: {{type: mock, fail_status: 503}}
  slow: {{type: mock, chunk_delay_ms: 50}}
models:
  echo: {{providers: {{mock: {{model_id: mock-echo}}}}}}
  other: {{providers: {{mock: {{model_id: mock-echo}}}}}}
  slow-echo: {{providers: {{slow: {{model_id: mock-echo}}}}}}
  echo-failover:
    providers:
      broken: {{priority: 0, model_id: mock-echo}}
      mock: {{priority: 1, model_id: mock-echo}}
""")


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("governance")


@pytest.fixture(scope="module")
def proxy(store_dir):
    config = store_dir / "config.yaml"
    write_config(config, store_dir / "ledger.db")
    with running_proxy(config, secrets=[MASTER_KEY]) as running:
        running["root"] = running["base_url"].removesuffix("/v1")
        running["config"] = config
        yield running


class Answer:
    """A plain HTTP answer: status, headers, body."""

    def __init__(self, status, headers, body):
        self.status_code, self.headers, self.text = status, headers, body

    def json(self):
        return json.loads(self.text)


def request(proxy, method, path, json_body=None, params=None, headers=None):
    url = urllib.parse.urlparse(proxy["root"])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    if params:
        path += "?" + urllib.parse.urlencode(params)
    body = None if json_body is None else json.dumps(json_body)
    connection.request(method, path, body=body, headers={"content-type": "application/json", **(headers or {})})
    response = connection.getresponse()
    answer = Answer(response.status, dict(response.getheaders()), response.read().decode())
    connection.close()
    return answer


def admin(proxy, method, path, json=None, params=None):
    return request(proxy, method, path, json, params, {"authorization": f"Bearer {MASTER_KEY}"})


def create_key(proxy, **fields):
    response = admin(proxy, "POST", "/admin/keys", json=fields)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["key"].startswith("sk-lp-") and "secret_hash" not in body
    return body


def client(proxy, key, **kwargs):
    return openai.OpenAI(base_url=proxy["base_url"], api_key=key, max_retries=0, **kwargs)


def poll(check, what, timeout=10):
    """Polls `check` until it returns something truthy, within a bounded deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_virtual_key_works_with_the_openai_sdk_and_carries_its_limits(proxy):
    created = create_key(proxy, alias="sdk", rpm=100, tpm=100000)
    raw = client(proxy, created["key"]).chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "hello there"}])
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    assert raw.headers["x-ratelimit-remaining-requests"] == "99"
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    assert Decimal(raw.headers["x-llm-proxy-cost"]) > 0


def test_limits_and_refusals_reach_the_sdk_as_its_own_errors(proxy):
    limited = create_key(proxy, rpm=2)
    sdk = client(proxy, limited["key"])
    for _ in range(2):
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    assert int(refused.value.response.headers["retry-after"]) >= 1

    narrow = create_key(proxy, models=["echo"])
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client(proxy, narrow["key"]).chat.completions.create(
            model="other", messages=[{"role": "user", "content": "hi"}])
    assert "other" in denied.value.message

    with pytest.raises(openai.AuthenticationError):
        client(proxy, "sk-lp-nobody_0000000000000000").models.list()


def test_a_hard_budget_is_insufficient_quota_and_the_sdk_does_not_retry(proxy):
    # One echo of two words costs a few millionths of a dollar: the budget allows one call.
    key = create_key(proxy, budget={"hard_usd": 0.000001, "period": "monthly"})
    sdk = openai.OpenAI(base_url=proxy["base_url"], api_key=key["key"], max_retries=3)
    sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "two words"}])
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "again"}])
    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    # `x-should-retry: false`: the SDK sent it once, not four times (the ledger counts them).
    rows = ledger(proxy, key["id"], 2)
    assert [r["outcome"] for r in rows] == ["refused", "ok"], rows


def test_rotation_keeps_the_old_secret_for_its_grace_and_blocking_is_immediate(proxy):
    key = create_key(proxy, alias="rotating")
    rotated = admin(proxy, "POST", f"/admin/keys/{key['id']}/rotate", json={"grace_seconds": 3600}).json()
    assert rotated["key"] != key["key"] and rotated["id"] == key["id"]
    for secret in (key["key"], rotated["key"]):
        client(proxy, secret).chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    assert admin(proxy, "POST", f"/admin/keys/{key['id']}/block").status_code == 200
    with pytest.raises(openai.AuthenticationError) as blocked:
        client(proxy, rotated["key"]).chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    assert "blocked" in blocked.value.message
    admin(proxy, "POST", f"/admin/keys/{key['id']}/rotate", json={"grace_seconds": 0})
    admin(proxy, "POST", f"/admin/keys/{key['id']}/unblock")
    with pytest.raises(openai.AuthenticationError):
        client(proxy, rotated["key"]).models.list()


def test_the_anthropic_sdk_uses_a_virtual_key_through_x_api_key(proxy):
    key = create_key(proxy, models=["echo"])
    sdk = anthropic.Anthropic(base_url=proxy["root"], api_key=key["key"], max_retries=0)
    message = sdk.messages.create(model="echo", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text
    with pytest.raises(anthropic.PermissionDeniedError):
        sdk.messages.create(model="other", max_tokens=50, messages=[{"role": "user", "content": "hi"}])


def ledger(proxy, key_id, count):
    def rows():
        page = admin(proxy, "GET", "/admin/requests", params={"key_id": key_id, "limit": 100}).json()["data"]
        return page if len(page) >= count else None
    return poll(rows, f"{count} ledger rows for {key_id}")


def test_every_call_leaves_a_ledger_row_and_the_spend_report_adds_them_up(proxy):
    key = create_key(proxy, alias="ledger")
    sdk = client(proxy, key["key"])
    costs = []
    plain = sdk.chat.completions.with_raw_response.create(model="echo", messages=[{"role": "user", "content": "one two"}])
    costs.append(Decimal(plain.headers["x-llm-proxy-cost"]))
    failed_over = sdk.chat.completions.with_raw_response.create(
        model="echo-failover", messages=[{"role": "user", "content": "three four five"}])
    costs.append(Decimal(failed_over.headers["x-llm-proxy-cost"]))
    stream = sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "six seven"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    # A client that goes away mid-stream: its row says so.
    url = urllib.parse.urlparse(proxy["root"])
    cut = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    cut.request("POST", "/v1/chat/completions", headers={"authorization": f"Bearer {key['key']}",
                                                          "content-type": "application/json"},
                body=json.dumps({"model": "slow-echo", "stream": True,
                                 "messages": [{"role": "user", "content": " ".join(["word"] * 100)}]}))
    cut.getresponse().read(20)
    cut.close()

    rows = ledger(proxy, key["id"], 4)
    by_outcome = {}
    for row in rows:
        by_outcome.setdefault(row["outcome"], []).append(row)
    assert {"ok", "completed", "client_gone"} <= set(by_outcome), by_outcome.keys()
    failover_row = next(r for r in rows if r["model"] == "echo-failover")
    assert failover_row["attempts"] == 2 and failover_row["provider"] == "mock"
    streamed = by_outcome["completed"][0]
    assert streamed["stream"] is True and streamed["ttft_ms"] is not None and streamed["cost_nanos"] > 0
    for row in rows:
        assert row["request_id"] and row["latency_ms"] >= 0 and row["key_id"] == key["id"]

    report = poll(lambda: [r for r in admin(proxy, "GET", "/admin/spend",
                                              params={"group_by": "key", "key_id": key["id"]}).json()["data"]
                           if r["requests"] == len(rows)], "the daily aggregate")
    total = sum(row["cost_nanos"] for row in rows)
    assert report[0]["cost_nanos"] == total
    assert Decimal(report[0]["cost_usd"]) == Decimal(total) / 10**9
    # The plain and failed-over answers' cost headers are their ledger rows' costs.
    header_nanos = sorted(int(c * 10**9) for c in costs)
    assert header_nanos == sorted(r["cost_nanos"] for r in rows if not r["stream"])


def test_spend_survives_a_restart(proxy, store_dir):
    key = create_key(proxy, budget={"hard_usd": 0.000001, "period": "total"})
    client(proxy, key["key"]).chat.completions.create(model="echo", messages=[{"role": "user", "content": "spend it"}])
    ledger(proxy, key["id"], 1)
    # A second process on the same database: the spend is read back, not forgotten.
    with running_proxy(proxy["config"], secrets=[MASTER_KEY]) as second:
        with pytest.raises(openai.RateLimitError) as refused:
            openai.OpenAI(base_url=second["base_url"], api_key=key["key"], max_retries=0).chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "more"}])
        assert refused.value.code == "insufficient_quota"
