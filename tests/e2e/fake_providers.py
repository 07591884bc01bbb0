"""A fake upstream that speaks five wire formats (OpenAI Chat Completions, the OpenAI Responses
API, Azure OpenAI, Anthropic Messages, Gemini generateContent), streamed and not, with a tiny deterministic "model":

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
# The last request body and headers each route received, for tests that check what arrived.
LAST = {}
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
        LAST[path] = {"body": body, "headers": dict(self.headers)}
        if path == "/openai/v1/responses":
            return self.responses_api(body, self.headers.get("Authorization") == f"Bearer {KEYS['openai']}")
        if path == "/v1/messages/count_tokens":
            return self.send_json(200, {"input_tokens": len(json.dumps(body["messages"])) // 4})
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

    # --- OpenAI Responses -------------------------------------------------------------------

    def responses_api(self, body, authorized):
        if not authorized:
            return self.send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        last = items[-1]
        if last.get("type") == "function_call_output":
            kind, payload = "tool", last["output"]
        else:
            parts = last["content"] if isinstance(last["content"], list) else [{"type": "input_text", "text": last["content"]}]
            image = next((p for p in parts if p["type"] == "input_image"), None)
            if image:
                kind, payload = "image", image["image_url"][5:].split(";")[0]
            else:
                kind, payload = "text", " ".join(p["text"] for p in parts if p["type"] in ("input_text", "output_text"))
        text, call = think(kind, payload, bool(body.get("tools")))
        output = []
        if text:
            output.append({"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
        if call:
            output.append({"type": "function_call", "id": "fc_fake", "call_id": "call_fake1", "name": "get_weather",
                           "arguments": json.dumps(call), "status": "completed"})
        usage = {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens": 3,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10}
        response = {"id": "resp_fake", "object": "response", "created_at": 1700000000, "status": "completed", "error": None,
                    "incomplete_details": None, "instructions": body.get("instructions"), "max_output_tokens": None,
                    "model": body["model"], "output": output, "parallel_tool_calls": True, "previous_response_id": None,
                    "reasoning": {"effort": None, "summary": None}, "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}},
                    "tool_choice": "auto", "tools": body.get("tools", []), "top_p": 1.0, "truncation": "disabled",
                    "usage": usage, "user": None, "metadata": body.get("metadata") or {}}
        if not body.get("stream"):
            return self.send_json(200, response)
        self.start_stream()
        sequence = iter(range(1000))
        send = lambda kind, **fields: self.event({"type": kind, "sequence_number": next(sequence), **fields}, kind)
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        send("response.created", response=started)
        send("response.in_progress", response=started)
        for index, item in enumerate(output):
            if item["type"] == "message":
                send("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                send("response.content_part.added", item_id=item["id"], output_index=index, content_index=0, part=part)
                for piece in pieces(text):
                    send("response.output_text.delta", item_id=item["id"], output_index=index, content_index=0, delta=piece, logprobs=[])
                send("response.output_text.done", item_id=item["id"], output_index=index, content_index=0, text=text, logprobs=[])
                send("response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=item["content"][0])
            else:
                send("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "arguments": ""})
                for i in range(0, len(item["arguments"]), 4):
                    send("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=item["arguments"][i:i + 4])
                send("response.function_call_arguments.done", item_id=item["id"], output_index=index, name=item["name"], arguments=item["arguments"])
            send("response.output_item.done", output_index=index, item=item)
        send("response.completed", response=response)

    # --- Anthropic --------------------------------------------------------------------------

    def anthropic_error(self, message):
        self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})

    def anthropic(self, body):
        if self.headers.get("x-api-key") != KEYS["anthropic"] or not re.fullmatch(r"20\d\d-\d\d-\d\d", self.headers.get("anthropic-version") or ""):
            return self.send_json(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        if not isinstance(body.get("max_tokens"), int):
            return self.anthropic_error("max_tokens: Field required")
        if body["model"] == "claude-overloaded":
            return self.send_json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
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
