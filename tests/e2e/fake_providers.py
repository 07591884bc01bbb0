"""A fake upstream that speaks four wire formats (OpenAI, Azure OpenAI, Anthropic Messages,
Gemini generateContent), streamed and not, with a tiny deterministic "model":

- the last message is a tool result        -> "The weather in Paris is <result>."
- tools are offered                        -> a call of `get_weather` with {"city": "Paris"}
- the last user message holds an image     -> "I see a <media type> image."
- otherwise                                -> "Echo: <last user text>"

Each handler checks that the request is well-formed for its provider (auth header, required
fields, roles, where the system prompt goes) and answers that provider's own error format
otherwise, so the end-to-end tests check the proxy's translation too.
"""

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYS = {"openai": "sk-openai-e2e", "azure": "azure-e2e", "anthropic": "sk-ant-e2e", "gemini": "gemini-e2e"}
WEATHER_CALL = {"city": "Paris"}


def think(last_kind, payload, has_tools):
    """The fake model: (text, tool_call_args or None)."""
    if last_kind == "tool":
        return f"The weather in Paris is {payload}.", None
    if has_tools:
        return "", WEATHER_CALL
    if last_kind == "image":
        return f"I see a {payload} image.", None
    return f"Echo: {payload}", None


def pieces(text):
    """Word-sized pieces that concatenate back to the text."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path = self.path
        if path == "/openai/v1/chat/completions":
            return self.openai(body, self.headers.get("Authorization") == f"Bearer {KEYS['openai']}")
        if re.fullmatch(r"/openai/deployments/[^/]+/chat/completions\?api-version=[\w.-]+", path):
            return self.openai(body, self.headers.get("api-key") == KEYS["azure"])
        if path == "/v1/messages":
            return self.anthropic(body)
        match = re.fullmatch(r"/v1beta/models/([^/:]+):(generateContent|streamGenerateContent\?alt=sse)", path)
        if match:
            return self.gemini(body, match.group(2) != "generateContent")
        self.send_json(404, {"error": {"message": f"no route {path}"}})

    # --- plumbing -------------------------------------------------------------------------

    def send_json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
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

    def openai(self, body, authorized):
        if not authorized:
            return self.send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        last = body["messages"][-1]
        if last["role"] == "tool":
            kind, payload = "tool", last["content"]
        elif isinstance(last["content"], list):
            image = next((p for p in last["content"] if p["type"] == "image_url"), None)
            kind, payload = ("image", image["image_url"]["url"][5:].split(";")[0]) if image else ("text", "")
        else:
            kind, payload = "text", last["content"]
        text, call = think(kind, payload, bool(body.get("tools")))
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

    def anthropic_error(self, message):
        self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})

    def anthropic(self, body):
        if self.headers.get("x-api-key") != KEYS["anthropic"] or self.headers.get("anthropic-version") != "2023-06-01":
            return self.send_json(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        if not isinstance(body.get("max_tokens"), int):
            return self.anthropic_error("max_tokens: Field required")
        roles = [m["role"] for m in body["messages"]]
        if any(r not in ("user", "assistant") for r in roles) or roles[0] != "user" or any(a == b for a, b in zip(roles, roles[1:])):
            return self.anthropic_error("messages: roles must alternate between user and assistant, starting with user")
        if body.get("temperature", 0) > 1:
            return self.anthropic_error("temperature: must be at most 1")
        blocks = body["messages"][-1]["content"]
        blocks = [{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks
        result = next((b for b in blocks if b["type"] == "tool_result"), None)
        image = next((b for b in blocks if b["type"] == "image"), None)
        if result:
            kind, payload = "tool", result["content"]
        elif image:
            kind, payload = "image", image["source"]["media_type"]
        else:
            kind, payload = "text", " ".join(b["text"] for b in blocks if b["type"] == "text")
        text, call = think(kind, payload, bool(body.get("tools")))
        content = ([{"type": "text", "text": text}] if text else []) + (
            [{"type": "tool_use", "id": "toolu_fake1", "name": "get_weather", "input": call}] if call else [])
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
            if block["type"] == "text":
                self.event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}, "content_block_start")
                for piece in pieces(block["text"]):
                    self.event({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
            else:
                self.event({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}, "content_block_start")
                arguments = json.dumps(block["input"])
                for i in range(0, len(arguments), 5):
                    self.event({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": arguments[i:i + 5]}}, "content_block_delta")
            self.event({"type": "content_block_stop", "index": index}, "content_block_stop")
        self.event({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 4}}, "message_delta")
        self.event({"type": "message_stop"}, "message_stop")

    # --- Gemini -----------------------------------------------------------------------------

    def gemini(self, body, stream):
        if self.headers.get("x-goog-api-key") != KEYS["gemini"] or "key=" in self.path:
            return self.send_json(400, {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}})
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
        text, call = think(kind, payload, bool(body.get("tools")))
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
