"""The fake upstream's OpenAI Responses API (`POST /openai/v1/responses`), streamed and not.

It checks what OpenAI checks: `model` and `input` present, function tools flat
(`{"type": "function", "name": …}`), every `function_call_output` answering a
`function_call` earlier in the same input. It keeps nothing: a `previous_response_id` it is
sent is unknown to it (400), as the proxy is meant to send the whole conversation instead.
Its answers follow `openai.types.responses` (checked by test_fake_providers.py).
"""

import itertools
import json

from fake_model import OVERLOADED, RATE_LIMITED, pieces, think

_ids = itertools.count(1)


def error(handler, status, message, code=None, param=None, kind="invalid_request_error"):
    handler.send_json(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})


def last_turn(items):
    """(kind, payload) of the last input item, or an error message."""
    calls = {i.get("call_id") for i in items if i.get("type") == "function_call"}
    for item in items:
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            return None, f"No tool call found for function call output with call_id {item.get('call_id')}."
    last = items[-1]
    if last.get("type") == "function_call_output":
        output = last["output"]
        return "tool", output if isinstance(output, str) else " ".join(p.get("text", "") for p in output)
    if last.get("type", "message") != "message" or last.get("role") not in ("user", "developer", "system"):
        return None, "the last input item must be a user message or a function_call_output"
    content = last["content"]
    if isinstance(content, str):
        return "text", content
    image = next((p for p in content if p["type"] == "input_image"), None)
    if image:
        return "image", image["image_url"][5:].split(";")[0]
    return "text", " ".join(p["text"] for p in content if p["type"] == "input_text")


def answer(handler, body):
    if not isinstance(body.get("model"), str) or "input" not in body:
        return error(handler, 400, "Missing required parameter: 'model' or 'input'.", "missing_required_parameter")
    if body["model"] == OVERLOADED:
        return error(handler, 503, "The server is overloaded.", None, kind="server_error")
    if body["model"] == RATE_LIMITED:
        return handler.send_json(429, {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
                                 {"Retry-After": "30"})
    if body.get("previous_response_id"):
        return error(handler, 400, f"Previous response with id '{body['previous_response_id']}' not found.",
                     "previous_response_not_found", "previous_response_id")
    tools = body.get("tools") or []
    if any(t.get("type") == "function" and ("function" in t or "name" not in t) for t in tools):
        return error(handler, 400, "Missing required parameter: 'tools[0].name'.", "missing_required_parameter", "tools")
    items = body["input"]
    items = [{"role": "user", "content": items}] if isinstance(items, str) else items
    if not items:
        return error(handler, 400, "input must not be empty", param="input")
    kind, payload = last_turn(items)
    if kind is None:
        return error(handler, 400, payload, param="input")
    text_format = (body.get("text") or {}).get("format") or {"type": "text"}
    schema = text_format.get("schema") if text_format.get("type") == "json_schema" else None
    names = [t.get("name") for t in tools if t.get("type") == "function"]
    text, call = think(kind, payload, names, schema)

    n = next(_ids)
    output = []
    if text:
        output.append({"id": f"msg_fake{n}", "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
    if call:
        output.append({"id": f"fc_fake{n}", "type": "function_call", "status": "completed", "call_id": f"call_fake{n}",
                       "name": "get_weather", "arguments": json.dumps(call)})
    response = {
        "id": f"resp_fake{n}", "object": "response", "created_at": 1700000000, "status": "completed",
        "model": body["model"], "output": output, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True), "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools, "temperature": 1.0, "top_p": 1.0, "previous_response_id": None, "store": body.get("store", True),
        "text": {"format": text_format}, "truncation": "disabled", "reasoning": {"effort": None, "summary": None},
        "usage": {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens": 5,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12},
    }
    if not body.get("stream"):
        return handler.send_json(200, response)
    stream(handler, response)


def stream(handler, response):
    """The typed event sequence OpenAI sends for `response`."""
    seq = itertools.count()

    def emit(kind, **fields):
        handler.event({"type": kind, "sequence_number": next(seq), **fields}, kind)

    handler.start_stream()
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        ids = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            text = item["content"][0]["text"]
            emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
            emit("response.content_part.added", **ids, content_index=0, part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            for piece in pieces(text):
                emit("response.output_text.delta", **ids, content_index=0, delta=piece, logprobs=[])
            emit("response.output_text.done", **ids, content_index=0, text=text, logprobs=[])
            emit("response.content_part.done", **ids, content_index=0, part=item["content"][0])
        else:
            arguments = item["arguments"]
            emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "arguments": ""})
            for i in range(0, len(arguments), 4):
                emit("response.function_call_arguments.delta", **ids, delta=arguments[i:i + 4])
            emit("response.function_call_arguments.done", **ids, name=item["name"], arguments=arguments)
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=response)
