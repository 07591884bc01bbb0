"""A fake upstream that speaks four wire formats (OpenAI Chat Completions and Responses, Azure
OpenAI, Anthropic Messages, Gemini generateContent), streamed and not, around the
deterministic model of fake_model.py.

Each handler checks that the request is well-formed for its provider (auth header, required
fields, roles, where the system prompt goes) and answers that provider's own error format
otherwise, so the end-to-end tests check the proxy's translation too. The upstream model ids
`fake_model.OVERLOADED` and `fake_model.RATE_LIMITED` make any route fail in its own format.
`LAST[route]` holds the last request each route received (`headers`, lower-cased, and the raw
`body` bytes), for tests that check what reached the upstream.
"""

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fake_responses
from fake_model import OVERLOADED, RATE_LIMITED, count_words, pieces, sample, think

KEYS = {"openai": "sk-openai-e2e", "azure": "azure-e2e", "anthropic": "sk-ant-e2e", "gemini": "gemini-e2e"}
LAST = {}
SIGNATURE = "sig-fake"  # what the fake signs its thinking blocks with, and demands back


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_json(404, {"error": {"message": f"no route GET {self.path}"}})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.loads(raw)
        path = self.path
        route, action = self.route(path)
        LAST[route] = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw}
        return action(body)

    def route(self, path):
        bearer = self.headers.get("Authorization") == f"Bearer {KEYS['openai']}"
        azure_key = self.headers.get("api-key") == KEYS["azure"]
        if path == "/openai/v1/chat/completions":
            return "openai", lambda body: self.openai(body, bearer)
        if re.fullmatch(r"/openai/deployments/[^/]+/chat/completions\?api-version=[\w.-]+", path):
            return "azure", lambda body: self.openai(body, azure_key)
        if path == "/openai/v1/responses":
            return "responses", lambda body: self.openai_responses(body, bearer or azure_key)
        if path == "/v1/messages":
            return "anthropic", self.anthropic
        if path == "/v1/messages/count_tokens":
            return "anthropic_count_tokens", self.count_tokens
        match = re.fullmatch(r"/v1beta/models/([^/:]+):(generateContent|streamGenerateContent\?alt=sse)", path)
        if match:
            return "gemini", lambda body: self.gemini(body, match.group(2) != "generateContent")
        return "unknown", lambda body: self.send_json(404, {"error": {"message": f"no route {path}"}})

    # --- plumbing -------------------------------------------------------------------------

    def send_json(self, status, value, headers=None):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, header in (headers or {}).items():
            self.send_header(name, header)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def event(self, data, name=None):
        text = (f"event: {name}\n" if name else "") + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
        self.wfile.write(text.encode())
        self.wfile.flush()

    # --- OpenAI and Azure -----------------------------------------------------------------

    def openai_responses(self, body, authorized):
        if not authorized:
            return fake_responses.error(self, 401, "Incorrect API key provided.", "invalid_api_key")
        fake_responses.answer(self, body)

    def openai(self, body, authorized):
        if not authorized:
            return self.send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        if body["model"] == OVERLOADED:
            return self.send_json(503, {"error": {"message": "The server is overloaded.", "type": "server_error", "param": None, "code": None}})
        if body["model"] == RATE_LIMITED:
            return self.send_json(429, {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
                                  {"Retry-After": "30"})
        # The last turn that is not a system message (a translated Claude Code call carries
        # mid-conversation system turns); of a turn in parts, its last text (a translated
        # Codex call merges its context and its prompt into one user turn).
        last = [m for m in body["messages"] if m["role"] != "system"][-1]
        if last["role"] == "tool":
            kind, payload = "tool", last["content"]
        elif isinstance(last["content"], list):
            image = next((p for p in last["content"] if p["type"] == "image_url"), None)
            texts = [p["text"] for p in last["content"] if p["type"] == "text"]
            kind, payload = ("image", image["image_url"]["url"][5:].split(";")[0]) if image else ("text", texts[-1] if texts else "")
        else:
            kind, payload = "text", last["content"]
        response_format = body.get("response_format") or {}
        schema = response_format["json_schema"].get("schema", {}) if response_format.get("type") == "json_schema" else None
        names = [t["function"]["name"] for t in body.get("tools") or []]
        text, call = think(kind, payload, names, schema)
        base = {"id": "chatcmpl-fake", "created": 1700000000, "model": body["model"]}
        finish = "tool_calls" if call else "stop"
        tool_calls = [{"id": "call_fake1", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(call)}}] if call else None
        if not body.get("stream"):
            message = {"role": "assistant", "content": text or None, "refusal": None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return self.send_json(200, {**base, "object": "chat.completion", "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
        self.start_stream()
        chunk = lambda delta, reason=None: {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}
        self.event(chunk({"role": "assistant", "content": ""}))
        for piece in pieces(text) if text else []:
            self.event(chunk({"content": piece}))
        if call:
            arguments = json.dumps(call)
            self.event(chunk({"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}))
            for i in range(0, len(arguments), 4):
                self.event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + 4]}}]}))
        self.event(chunk({}, finish))
        self.event("[DONE]")

    # --- Anthropic --------------------------------------------------------------------------

    def anthropic_error(self, message, status=400, kind="invalid_request_error", headers=None):
        self.send_json(status, {"type": "error", "error": {"type": kind, "message": message}}, headers)

    def anthropic_refusal(self, body):
        """The error Anthropic would answer this request with, or None."""
        version = self.headers.get("anthropic-version") or ""
        if self.headers.get("x-api-key") != KEYS["anthropic"] or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", version) or version < "2023-06-01":
            return lambda: self.anthropic_error("invalid x-api-key", 401, "authentication_error")
        if body.get("model") == OVERLOADED:
            return lambda: self.anthropic_error("Overloaded", 529, "overloaded_error")
        if body.get("model") == RATE_LIMITED:
            return lambda: self.anthropic_error("Number of requests has exceeded your rate limit", 429, "rate_limit_error", {"retry-after": "30"})
        system = body.get("system", "")
        if not isinstance(system, str) and not (isinstance(system, list) and all(b.get("type") == "text" and isinstance(b.get("text"), str) for b in system)):
            return lambda: self.anthropic_error("system: Input should be a string or a list of text blocks")
        # `system` turns may sit between the others (Claude Code appends one); the rest alternate.
        roles = [m["role"] for m in body.get("messages") or [{"role": "none"}] if m["role"] != "system"] or ["none"]
        if any(r not in ("user", "assistant") for r in roles) or roles[0] != "user" or any(a == b for a, b in zip(roles, roles[1:])):
            return lambda: self.anthropic_error("messages: roles must alternate between user and assistant, starting with user")
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block["type"] == "thinking" and block.get("signature") != SIGNATURE:
                    return lambda: self.anthropic_error("messages: Invalid `signature` in `thinking` block")
        return None

    def count_tokens(self, body):
        refusal = self.anthropic_refusal(body)
        if refusal:
            return refusal()
        counted = {k: body[k] for k in ("system", "messages", "tools") if k in body}
        self.send_json(200, {"input_tokens": count_words(counted)})

    def anthropic(self, body):
        refusal = self.anthropic_refusal(body)
        if refusal:
            return refusal()
        if not isinstance(body.get("max_tokens"), int):
            return self.anthropic_error("max_tokens: Field required")
        if body.get("temperature", 0) > 1:
            return self.anthropic_error("temperature: must be at most 1")
        blocks = [m for m in body["messages"] if m["role"] != "system"][-1]["content"]
        blocks = [{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks
        result = next((b for b in blocks if b["type"] == "tool_result"), None)
        image = next((b for b in blocks if b["type"] == "image"), None)
        if result:
            content = result.get("content", "")
            kind, payload = "tool", content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)
        elif image:
            kind, payload = "image", image["source"]["media_type"]
        else:
            # Its last text block: a turn translated from a merged one ends with its prompt.
            texts = [b["text"] for b in blocks if b["type"] == "text"]
            kind, payload = "text", texts[-1] if texts else ""
        tools = body.get("tools") or []
        forced = (body.get("tool_choice") or {}).get("name") if (body.get("tool_choice") or {}).get("type") == "tool" else None
        text, call = think(kind, payload, [t["name"] for t in tools])
        name = "get_weather"
        if forced and kind != "tool":
            # How JSON output reaches Anthropic: one tool, forced; its input is the answer.
            schema = next(t["input_schema"] for t in tools if t["name"] == forced)
            text, call, name = "", sample(schema, payload), forced
        content = ([{"type": "thinking", "thinking": "Thinking about it.", "signature": SIGNATURE}]
                   if (body.get("thinking") or {}).get("type") == "enabled" else [])
        content += ([{"type": "text", "text": text}] if text else []) + (
            [{"type": "tool_use", "id": "toolu_fake1", "name": name, "input": call}] if call else [])
        stop = "tool_use" if call else "end_turn"
        usage = {"input_tokens": 10, "output_tokens": 4}
        if not body.get("stream"):
            return self.send_json(200, {"id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"],
                                        "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage})
        self.start_stream()
        self.event({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "content": [],
                    "model": body["model"], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}, "message_start")
        self.event({"type": "ping"}, "ping")
        for index, block in enumerate(content):
            delta = lambda d: self.event({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
            if block["type"] == "text":
                self.event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}, "content_block_start")
                for piece in pieces(block["text"]):
                    delta({"type": "text_delta", "text": piece})
            elif block["type"] == "thinking":
                self.event({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}, "content_block_start")
                delta({"type": "thinking_delta", "thinking": block["thinking"]})
                delta({"type": "signature_delta", "signature": block["signature"]})
            else:
                self.event({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}, "content_block_start")
                arguments = json.dumps(block["input"])
                for i in range(0, len(arguments), 5):
                    delta({"type": "input_json_delta", "partial_json": arguments[i:i + 5]})
            self.event({"type": "content_block_stop", "index": index}, "content_block_stop")
        self.event({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 4}}, "message_delta")
        self.event({"type": "message_stop"}, "message_stop")

    # --- Gemini -----------------------------------------------------------------------------

    def gemini(self, body, stream):
        if self.headers.get("x-goog-api-key") != KEYS["gemini"] or "key=" in self.path:
            return self.send_json(400, {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}})
        model = re.match(r"/v1beta/models/([^/:]+)", self.path).group(1)
        if model == OVERLOADED:
            return self.send_json(503, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
        if model == RATE_LIMITED:
            return self.send_json(429, {"error": {"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED"}})
        contents = body.get("contents") or []
        if not contents or any(c["role"] not in ("user", "model") for c in contents):
            return self.send_json(400, {"error": {"code": 400, "message": "Please use a valid role: user, model.", "status": "INVALID_ARGUMENT"}})
        parts = contents[-1]["parts"]
        result = next((p["functionResponse"] for p in parts if "functionResponse" in p), None)
        image = next((p["inlineData"] for p in parts if "inlineData" in p), None)
        if result:
            kind, payload = "tool", result["response"].get("content", json.dumps(result["response"]))
        elif image:
            kind, payload = "image", image["mimeType"]
        else:
            kind, payload = "text", " ".join(p["text"] for p in parts if "text" in p)
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema is None and config.get("responseMimeType") == "application/json":
            schema = {"type": "object"}
        names = [d["name"] for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
        text, call = think(kind, payload, names, schema)
        usage = {"promptTokenCount": 6, "candidatesTokenCount": 4, "totalTokenCount": 10}
        response_parts = ([{"text": text}] if text else []) + ([{"functionCall": {"name": "get_weather", "args": call}}] if call else [])
        candidate = lambda parts, finish=None: {"content": {"role": "model", "parts": parts}, "index": 0, **({"finishReason": finish} if finish else {})}
        if not stream:
            return self.send_json(200, {"candidates": [candidate(response_parts, "STOP")], "usageMetadata": usage, "modelVersion": "gemini-fake"})
        self.start_stream()
        pieces_parts = [{"text": p} for p in pieces(text)] if text else []
        if call:
            pieces_parts.append({"functionCall": {"name": "get_weather", "args": call}})
        for i, part in enumerate(pieces_parts):
            last = i == len(pieces_parts) - 1
            event = {"candidates": [candidate([part], "STOP" if last else None)], "modelVersion": "gemini-fake"}
            if last:
                event["usageMetadata"] = usage
            self.wfile.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
            self.wfile.flush()


def start():
    """Starts the fake upstream on a free port; returns the server (see `server_port`)."""
    import threading
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
