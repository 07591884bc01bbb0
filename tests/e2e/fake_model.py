"""The deterministic "model" behind every fake upstream (fake_providers.py), whatever its
wire format. Each handler reduces its request to the kind of the last turn, and asks:

- the last turn is a tool result           -> "The weather in Paris is <result>."
- a JSON schema is demanded                -> a JSON object shaped by that schema (see `sample`)
- a tool named `get_weather` is offered    -> a call of `get_weather` with {"city": "Paris"}
- the last user turn holds an image        -> "I see a <media type> image."
- otherwise                                -> "Echo: <last user text>"

Only `get_weather` is ever called: coding CLIs (Claude Code, Codex) always offer their own
tools, and a model that called one of those would send them off running shell commands.
"""

import json
import re

WEATHER_TOOL = "get_weather"
WEATHER_CALL = {"city": "Paris"}

# Upstream model ids that make every fake upstream fail, each in its own wire format.
OVERLOADED = "fake-overloaded"
RATE_LIMITED = "fake-rate-limited"


def think(last_kind, payload, tool_names=(), schema=None):
    """(text, tool_call_args or None); `schema` is a demanded JSON schema (text is then JSON)."""
    if last_kind == "tool":
        return f"The weather in Paris is {payload}.", None
    if schema is not None:
        return json.dumps(sample(schema, payload)), None
    if WEATHER_TOOL in tool_names:
        return "", WEATHER_CALL
    if last_kind == "image":
        return f"I see a {payload} image.", None
    return f"Echo: {payload}", None


def sample(schema, text):
    """A value of `schema` (flat JSON Schema): strings are `text`, integers 42, numbers 1.5."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: sample(sub, text) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(schema.get("items", {}), text)]
    return {"string": text, "integer": 42, "number": 1.5, "boolean": True}.get(kind)


def pieces(text):
    """Word-sized pieces that concatenate back to the text."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def count_words(value):
    """Anthropic's count_tokens, faked: the words of every string in a request body."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(count_words(v) for k, v in value.items() if k not in ("type", "model", "role"))
    if isinstance(value, list):
        return sum(count_words(v) for v in value)
    return 0
