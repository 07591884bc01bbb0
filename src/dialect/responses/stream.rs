//! `chat.completion.chunk`s → the Responses API's typed stream events.
//!
//! One output item is open at a time (reasoning, then a message, then the function calls,
//! which stay open together because Chat may interleave their argument fragments); a new
//! kind closes what is open, in order, and the end closes everything before the terminal
//! event carrying the whole response.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::response::{Echo, End, Status, item_id, message_item, reasoning_item, refusal_part, text_part};
use crate::dialect::FromChat;
use crate::dialect::chat::{Chunk, ToolCallDelta, text};
use crate::providers::translate::response::now_secs;
use crate::usage::Usage;

// === the error read ===

#[derive(Deserialize)]
struct ErrorEnvelope<'a> {
    #[serde(default, borrow)]
    error: Option<ErrorDetail<'a>>,
}

#[derive(Deserialize)]
struct ErrorDetail<'a> {
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    code: Option<Value>,
}

// === the events written ===

#[derive(Serialize)]
struct Event<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    body: T,
}

/// A text, refusal, reasoning or arguments delta (or its `.done`), the per-token events.
#[derive(Serialize)]
struct Piece<'a> {
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a str>,
    /// Always empty: Chat upstreams' log probabilities are not carried over.
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
}

impl<'a> Piece<'a> {
    fn new(item_id: &'a str, output_index: usize) -> Self {
        Self {
            item_id,
            output_index,
            content_index: None,
            summary_index: None,
            delta: None,
            text: None,
            refusal: None,
            arguments: None,
            logprobs: None,
        }
    }
}

/// Numbers and writes events: `event: <type>\ndata: {"type":…,"sequence_number":N,…}\n\n`.
#[derive(Default)]
struct Sink {
    sequence: u64,
}

impl Sink {
    fn emit(&mut self, out: &mut BytesMut, kind: &str, body: impl Serialize) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Serializing plain structs and JSON values into memory cannot fail.
        let _ = serde_json::to_writer(out.writer(), &Event { kind, sequence_number: self.sequence, body });
        out.extend_from_slice(b"\n\n");
        self.sequence += 1;
    }
}

// === the writer ===

#[derive(Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Refusal,
}

/// The one open item that is not a function call.
enum Open {
    None,
    Reasoning { index: usize, id: String, text: String },
    Message { index: usize, id: String, parts: Vec<Value>, part: Option<(PartKind, String)> },
}

/// An open function call, known by Chat's tool call `index`.
struct Call {
    chat_index: u32,
    index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Writes a Responses stream from Chat chunks; see the module doc.
pub(super) struct Writer {
    id: String,
    echo: Echo,
    sink: Sink,
    started: bool,
    over: bool,
    model: String,
    created_at: u64,
    next_index: usize,
    /// Closed items, in output order.
    done: Vec<Value>,
    open: Open,
    calls: Vec<Call>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl Writer {
    /// A writer answering `request` as response `id`.
    pub fn new(request: &[u8], id: &str) -> Self {
        let echo = Echo::new(request);
        Self {
            id: id.to_string(),
            model: echo.model.clone(),
            echo,
            sink: Sink::default(),
            started: false,
            over: false,
            created_at: now_secs(),
            next_index: 0,
            done: Vec::new(),
            open: Open::None,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    fn response(&self, status: Status, output: &[Value], error: Option<Value>) -> Value {
        let end = End { status, output, usage: self.usage, error };
        self.echo.response(&self.id, self.created_at, &self.model, &end)
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response(Status::InProgress, &[], None);
        self.sink.emit(out, "response.created", json!({"response": response}));
        self.sink.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn take_index(&mut self) -> usize {
        self.next_index += 1;
        self.next_index - 1
    }

    fn item_added(&mut self, out: &mut BytesMut, index: usize, item: Value) {
        self.sink.emit(out, "response.output_item.added", json!({"output_index": index, "item": item}));
    }

    fn item_done(&mut self, out: &mut BytesMut, index: usize, item: Value) {
        self.sink.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item.clone()}),
        );
        self.done.push(item);
    }

    fn reasoning(&mut self, out: &mut BytesMut, delta: &str) {
        if delta.is_empty() {
            return;
        }
        if !matches!(self.open, Open::Reasoning { .. }) {
            self.close_all(out, "completed");
            let index = self.take_index();
            let id = item_id("rs", &self.id, index);
            self.item_added(
                out,
                index,
                json!({"type": "reasoning", "id": id, "summary": [], "status": "in_progress"}),
            );
            let part = json!({"item_id": id, "output_index": index, "summary_index": 0,
                              "part": {"type": "summary_text", "text": ""}});
            self.sink.emit(out, "response.reasoning_summary_part.added", part);
            self.open = Open::Reasoning { index, id, text: String::new() };
        }
        if let Open::Reasoning { index, id, text } = &mut self.open {
            text.push_str(delta);
            let piece = Piece { summary_index: Some(0), delta: Some(delta), ..Piece::new(id, *index) };
            self.sink.emit(out, "response.reasoning_summary_text.delta", piece);
        }
    }

    /// Text or a refusal, into the open message (opened, or its part switched, as needed).
    fn message(&mut self, out: &mut BytesMut, kind: PartKind, delta: &str) {
        if delta.is_empty() {
            return;
        }
        if !matches!(self.open, Open::Message { .. }) {
            self.close_all(out, "completed");
            let index = self.take_index();
            let id = item_id("msg", &self.id, index);
            self.item_added(out, index, message_item(&id, Vec::new(), "in_progress"));
            self.open = Open::Message { index, id, parts: Vec::new(), part: None };
        }
        if matches!(&self.open, Open::Message { part: Some((open, _)), .. } if *open != kind) {
            self.close_part(out);
        }
        let Open::Message { index, id, parts, part } = &mut self.open else { return };
        let content_index = parts.len();
        let (_, text) = part.get_or_insert_with(|| {
            let empty = match kind {
                PartKind::Text => text_part(""),
                PartKind::Refusal => refusal_part(""),
            };
            let added =
                json!({"item_id": id, "output_index": index, "content_index": content_index, "part": empty});
            self.sink.emit(out, "response.content_part.added", added);
            (kind, String::new())
        });
        text.push_str(delta);
        let piece =
            Piece { content_index: Some(content_index), delta: Some(delta), ..Piece::new(id, *index) };
        match kind {
            PartKind::Text => {
                let piece = Piece { logprobs: Some([]), ..piece };
                self.sink.emit(out, "response.output_text.delta", piece);
            }
            PartKind::Refusal => self.sink.emit(out, "response.refusal.delta", piece),
        }
    }

    fn close_part(&mut self, out: &mut BytesMut) {
        let Open::Message { index, id, parts, part } = &mut self.open else { return };
        let Some((kind, text)) = part.take() else { return };
        let content_index = parts.len();
        let piece = Piece { content_index: Some(content_index), ..Piece::new(id, *index) };
        let finished = match kind {
            PartKind::Text => {
                let piece = Piece { text: Some(&text), logprobs: Some([]), ..piece };
                self.sink.emit(out, "response.output_text.done", piece);
                text_part(&text)
            }
            PartKind::Refusal => {
                self.sink.emit(out, "response.refusal.done", Piece { refusal: Some(&text), ..piece });
                refusal_part(&text)
            }
        };
        let done =
            json!({"item_id": id, "output_index": index, "content_index": content_index, "part": finished});
        self.sink.emit(out, "response.content_part.done", done);
        parts.push(finished);
    }

    fn tool_call(&mut self, out: &mut BytesMut, call: ToolCallDelta<'_>) {
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        // A fragment without an index is the first call's.
        let chat_index = call.index.unwrap_or(0);
        if !self.calls.iter().any(|c| c.chat_index == chat_index) {
            self.close_open(out, "completed");
            let index = self.take_index();
            let id = item_id("fc", &self.id, index);
            // A host that sends no id still gets one: the client must be able to answer it.
            let call_id = call.id.map_or_else(|| item_id("call", &self.id, index), Cow::into_owned);
            let name = name.map(Cow::into_owned).unwrap_or_default();
            let item = self.echo.call_item(&id, &call_id, &name, "", "in_progress");
            self.item_added(out, index, item);
            self.calls.push(Call { chat_index, index, id, call_id, name, arguments: String::new() });
        }
        let Some(arguments) = arguments.filter(|a| !a.is_empty()) else { return };
        let Some(open) = self.calls.iter_mut().find(|c| c.chat_index == chat_index) else { return };
        open.arguments.push_str(&arguments);
        let piece = Piece { delta: Some(&arguments), ..Piece::new(&open.id, open.index) };
        self.sink.emit(out, "response.function_call_arguments.delta", piece);
    }

    /// Closes the open reasoning or message item; `status` is a message's.
    fn close_open(&mut self, out: &mut BytesMut, status: &str) {
        self.close_part(out);
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Reasoning { index, id, text } => {
                let piece = Piece { summary_index: Some(0), text: Some(&text), ..Piece::new(&id, index) };
                self.sink.emit(out, "response.reasoning_summary_text.done", piece);
                let part = json!({"item_id": id, "output_index": index, "summary_index": 0,
                                  "part": {"type": "summary_text", "text": text}});
                self.sink.emit(out, "response.reasoning_summary_part.done", part);
                self.item_done(out, index, reasoning_item(&id, &text, "completed"));
            }
            Open::Message { index, id, parts, .. } => {
                self.item_done(out, index, message_item(&id, parts, status));
            }
        }
    }

    fn close_calls(&mut self, out: &mut BytesMut) {
        for call in std::mem::take(&mut self.calls) {
            let piece = Piece { arguments: Some(&call.arguments), ..Piece::new(&call.id, call.index) };
            self.sink.emit(out, "response.function_call_arguments.done", piece);
            let item = self.echo.call_item(&call.id, &call.call_id, &call.name, &call.arguments, "completed");
            self.item_done(out, call.index, item);
        }
    }

    fn close_all(&mut self, out: &mut BytesMut, status: &str) {
        self.close_open(out, status);
        self.close_calls(out);
    }

    /// The output so far with the open items as they stand, for a failed response.
    fn snapshot(&self) -> Vec<Value> {
        let mut output = self.done.clone();
        match &self.open {
            Open::None => {}
            Open::Reasoning { id, text, .. } => output.push(reasoning_item(id, text, "incomplete")),
            Open::Message { id, parts, part, .. } => {
                let mut parts = parts.clone();
                match part {
                    Some((PartKind::Text, text)) => parts.push(text_part(text)),
                    Some((PartKind::Refusal, text)) => parts.push(refusal_part(text)),
                    None => {}
                }
                output.push(message_item(id, parts, "incomplete"));
            }
        }
        for call in &self.calls {
            output.push(self.echo.call_item(
                &call.id,
                &call.call_id,
                &call.name,
                &call.arguments,
                "incomplete",
            ));
        }
        output
    }
}

impl FromChat for Writer {
    fn chunk(&mut self, data: &str, out: &mut BytesMut) {
        if self.over {
            return;
        }
        // A chunk that cannot be read says nothing a client could use.
        let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(data) else { return };
        if let Some(model) = chunk.model.as_deref().filter(|m| !m.is_empty()) {
            model.clone_into(&mut self.model);
        }
        if !self.started
            && let Some(created) = chunk.created()
        {
            self.created_at = created;
        }
        self.start(out);
        if chunk.usage.is_some()
            && let Some(usage) = Usage::from_openai(data.as_bytes())
        {
            self.usage = Some(usage);
        }
        // Responses has no `n`: the first choice is the answer.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                // The first reasoning field that is text is the one read, even if empty.
                let reasoning = text(delta.reasoning_content).or_else(|| text(delta.reasoning));
                if let Some(reasoning) = reasoning {
                    self.reasoning(out, &reasoning);
                }
                if let Some(text) = delta.content {
                    self.message(out, PartKind::Text, &text);
                }
                if let Some(refusal) = delta.refusal {
                    self.message(out, PartKind::Refusal, &refusal);
                }
                for call in delta.tool_calls.into_iter().flatten() {
                    self.tool_call(out, call);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.into_owned());
            }
        }
    }

    fn finish(&mut self, usage: Option<&Usage>, out: &mut BytesMut) {
        if self.over {
            return;
        }
        self.start(out);
        self.over = true;
        if let Some(usage) = usage {
            self.usage = Some(*usage);
        }
        let status = Status::from_finish(self.finish_reason.as_deref());
        self.close_all(out, status.item());
        let response = self.response(status, &self.done, None);
        let kind = match status {
            Status::Incomplete(_) => "response.incomplete",
            _ => "response.completed",
        };
        self.sink.emit(out, kind, json!({"response": response}));
    }

    fn error(&mut self, data: &str, out: &mut BytesMut) {
        if self.over {
            return;
        }
        self.start(out);
        self.over = true;
        let detail = serde_json::from_str::<ErrorEnvelope<'_>>(data).ok().and_then(|e| e.error);
        let message = detail
            .as_ref()
            .and_then(|d| d.message.as_deref())
            .filter(|m| !m.is_empty())
            .unwrap_or("The upstream stream failed");
        let code = failure_code(detail.as_ref());
        let output = self.snapshot();
        let response =
            self.response(Status::Failed, &output, Some(json!({"code": code, "message": message})));
        // `response.failed`, not a bare `error` event: it is the terminal event clients
        // check (the Python SDK's `get_final_response`, the Vercel AI SDK, Codex), and it
        // carries the output so far.
        self.sink.emit(out, "response.failed", json!({"response": response}));
    }
}

/// A Chat error's type and code → one of the codes a failed response may carry (the SDKs
/// validate it against a closed list).
fn failure_code(detail: Option<&ErrorDetail<'_>>) -> &'static str {
    let Some(detail) = detail else { return "server_error" };
    let code = detail.code.as_ref().and_then(Value::as_str).unwrap_or("");
    let kind = detail.kind.as_deref().unwrap_or("");
    let numeric = detail.code.as_ref().and_then(Value::as_u64);
    if code.contains("rate_limit") || kind.contains("rate_limit") || numeric == Some(429) {
        "rate_limit_exceeded"
    } else if code == "invalid_prompt" || kind.contains("invalid_request") {
        "invalid_prompt"
    } else {
        "server_error"
    }
}
