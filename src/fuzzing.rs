//! Entry points for fuzz targets, not an API.
//!
//! Each function takes untrusted bytes, drives one parser the way the proxy does, and panics
//! only on a bug (a parser that panics, or an invariant that does not hold). The cargo-fuzz
//! targets in `fuzz/` call them, and `tests/fuzz_corpus.rs` replays the committed corpora
//! through the same functions under plain `cargo test`; [`TARGETS`] lists them by name.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use crate::api::request::ApiRequest;
use crate::providers::translate::response::ChunkWriter;
use crate::providers::translate::stream::{Flow, SseDecoder, Translate};
use crate::providers::{anthropic, gemini};
use crate::router::Router;
use crate::sse::EventScanner;

/// A fuzz target: its name (the file under `fuzz/fuzz_targets/` and its corpus folder) and
/// its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("request", request),
    ("sse_scanner", sse_scanner),
    ("anthropic_request", anthropic_request),
    ("anthropic_response", anthropic_response),
    ("anthropic_stream", anthropic_stream),
    ("gemini_request", gemini_request),
    ("gemini_response", gemini_response),
    ("gemini_stream", gemini_stream),
    ("config", config),
    ("responses_dialect", responses_dialect),
    ("messages_dialect", messages_dialect),
    ("native_streams", native_streams),
];

/// A client's Responses body: it parses or not, translates to Chat or not, and the
/// conversation store reads and keeps it (as a request and as an answer) without a panic; a
/// Chat answer and a Chat stream made of the input are written back as Responses, always as
/// well-formed JSON events.
pub fn responses_dialect(data: &[u8]) {
    let _ = ApiRequest::parse_responses(Bytes::copy_from_slice(data));
    if let Ok(chat) = crate::dialect::responses::to_chat(data) {
        assert!(serde_json::from_slice::<serde_json::Value>(&chat).is_ok(), "to_chat wrote bad JSON");
    }
    let request = br#"{"model":"m","input":"hi","stream":true}"#;
    if let Ok(answer) = crate::dialect::responses::answer(request, "resp_fuzz", data) {
        assert!(serde_json::from_slice::<serde_json::Value>(&answer).is_ok(), "answer wrote bad JSON");
    }
    check_writer(crate::dialect::responses::writer(request, "resp_fuzz"), data);
    let store = crate::conversations::Conversations::new(std::time::Duration::from_secs(60), 1 << 20);
    store.record(data, data);
    store.record(request, data);
    let _ = store.expand(data);
}

/// A client's Anthropic Messages body, and a Chat answer and stream made of the input written
/// back as Anthropic's, as [`responses_dialect`] does; also the token estimate and the error
/// body an upstream's bytes become.
pub fn messages_dialect(data: &[u8]) {
    let _ = ApiRequest::parse_messages(Bytes::copy_from_slice(data));
    let _ = crate::dialect::messages::estimate_input_tokens(data);
    if let Ok(chat) = crate::dialect::messages::to_chat(data) {
        assert!(serde_json::from_slice::<serde_json::Value>(&chat).is_ok(), "to_chat wrote bad JSON");
    }
    let request =
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    if let Ok(answer) = crate::dialect::messages::answer(request, data) {
        assert!(serde_json::from_slice::<serde_json::Value>(&answer).is_ok(), "answer wrote bad JSON");
    }
    let error = crate::dialect::messages::error_body(http::StatusCode::BAD_GATEWAY, data);
    assert!(serde_json::from_slice::<serde_json::Value>(&error).is_ok(), "error_body wrote bad JSON");
    check_writer(crate::dialect::messages::writer(request), data);
}

/// Feeds the input's SSE events to a client-dialect writer as a Chat stream (then an error
/// and the end): every event it writes carries JSON data.
fn check_writer(mut writer: Box<dyn crate::dialect::FromChat>, data: &[u8]) {
    let mut events = Vec::new();
    if SseDecoder::default().push(data, &mut events).is_err() {
        return;
    }
    let mut out = bytes::BytesMut::new();
    for event in &events {
        match event.data.as_str() {
            "[DONE]" => writer.finish(None, &mut out),
            data if data.starts_with("{\"error\"") => writer.error(data, &mut out),
            data => writer.chunk(data, &mut out),
        }
    }
    writer.finish(Some(&crate::usage::Usage::default()), &mut out);
    writer.error(r#"{"error":{"message":"x","type":"server_error"}}"#, &mut out);
    let mut written = Vec::new();
    SseDecoder::default().push(&out, &mut written).expect("the writer's events are small");
    for event in written {
        assert!(
            serde_json::from_str::<serde_json::Value>(&event.data).is_ok(),
            "bad event data: {}",
            event.data
        );
    }
}

/// The native pass-through scanners (Responses from OpenAI, Messages from Anthropic), fed
/// the input in chunks the input chooses: what they relay is always a prefix of the input,
/// byte for byte.
pub fn native_streams(data: &[u8]) {
    use crate::api::dialect::Dialect;
    let Some((&control, stream)) = data.split_first() else { return };
    let size = 1 + usize::from(control % 64);
    for dialect in [Dialect::Responses, Dialect::Messages] {
        let relayed = crate::dialect::bench::relayed(dialect, stream, size);
        assert!(stream.starts_with(&relayed), "{dialect:?}: the scanner changed the bytes it relayed");
    }
}

/// A client's chat or embeddings body: whatever parses can have its model rewritten, and the
/// rewritten body parses again to the same request with the new model.
pub fn request(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let parsers: [fn(Bytes) -> Result<ApiRequest, _>; 2] = [ApiRequest::parse, ApiRequest::parse_embeddings];
    for parse in parsers {
        let Ok(request) = parse(body.clone()) else { continue };
        for (model, model_json) in [("m", "\"m\""), ("\u{e9}\"/", r#""\u00e9\"\/""#)] {
            let rewritten = request.body_with_model(model_json);
            let again = match parse(rewritten.clone()) {
                Ok(again) => again,
                Err(err) => panic!("{rewritten:?} no longer parses: {err}"),
            };
            assert_eq!((again.model(), again.stream()), (model, request.stream()));
            assert_eq!(again.operation(), request.operation());
        }
    }
}

/// The relay's event scanner, fed the input in chunks whose sizes the input chooses: what it
/// emits is always a prefix of the input (every byte once, in order), and how the input was
/// cut changes neither what it noticed nor, beyond the LF of a CRLF cut in two, what it emitted.
/// Also reads the usage off the same bytes as a whole answer, as the router does for
/// pass-through (OpenAI-compatible) answers.
pub fn sse_scanner(data: &[u8]) {
    crate::usage::Usage::from_openai(data);
    let Some((&control, stream)) = data.split_first() else { return };
    let mut chunked = EventScanner::default();
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        // Chunk sizes 1..=16, picked by the bytes being cut, so the fuzzer steers them.
        let size = 1 + (usize::from(rest[0] ^ control) % 16);
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        let events = chunked.push(Bytes::copy_from_slice(chunk)).expect("small events are held").events;
        out.extend_from_slice(&events);
        rest = tail;
        assert!(stream.starts_with(&out), "the scanner emitted bytes out of order");
    }
    let mut whole = EventScanner::default();
    let all = whole.push(Bytes::copy_from_slice(stream)).expect("small events are held").events;
    assert!(stream.starts_with(&all));
    assert!(all.starts_with(&out) && all.len() - out.len() <= 1, "chunking changed the events");
    assert_eq!(
        (chunked.done, chunked.saw_error, chunked.usage, chunked.meaningful, chunked.early_error.is_some()),
        (whole.done, whole.saw_error, whole.usage, whole.meaningful, whole.early_error.is_some()),
        "chunking changed what the scanner noticed"
    );
}

/// An OpenAI chat request translated for Anthropic, streaming or not.
pub fn anthropic_request(data: &[u8]) {
    anthropic::bench::request(data, false);
    anthropic::bench::request(data, true);
}

/// An Anthropic answer (or error body) translated to OpenAI, with and without a JSON answer
/// tool: whatever translates is a `chat.completion`.
pub fn anthropic_response(data: &[u8]) {
    for json_tool in [None, Some("json_response")] {
        check_answer(anthropic::bench::answer(data, json_tool).as_deref(), "chat.completion");
    }
    anthropic::bench::error(data);
}

/// An Anthropic event stream translated to OpenAI chunks, cut where the input's first byte
/// says: what it writes is always a well-formed OpenAI stream.
pub fn anthropic_stream(data: &[u8]) {
    let json_tool = data.len().is_multiple_of(3).then_some("json_response");
    check_stream(anthropic::bench::translator(json_tool), data);
}

/// An OpenAI chat or embeddings request translated for Gemini.
pub fn gemini_request(data: &[u8]) {
    gemini::bench::request(data, false);
    gemini::bench::request(data, true);
    gemini::bench::embeddings_request(data);
}

/// A Gemini answer, embeddings answer or error body translated to OpenAI.
pub fn gemini_response(data: &[u8]) {
    check_answer(gemini::bench::answer(data).as_deref(), "chat.completion");
    for base64 in [false, true] {
        check_answer(gemini::bench::embeddings_answer(data, base64).as_deref(), "list");
    }
    gemini::bench::error(data);
}

/// A Gemini event stream translated to OpenAI chunks, cut where the input's first byte says:
/// what it writes is always a well-formed OpenAI stream.
pub fn gemini_stream(data: &[u8]) {
    check_stream(gemini::bench::translator(), data);
}

/// A translated answer, if there is one, is a JSON object of the `object` kind given.
fn check_answer(answer: Option<&[u8]>, object: &str) {
    if let Some(answer) = answer {
        let value: serde_json::Value = serde_json::from_slice(answer).expect("a translated answer is JSON");
        assert_eq!(value["object"], object, "{value}");
    }
}

/// Feeds `data` to `translator` the way the stream pump does (in pieces; stop at the first
/// error or at the translator's end) and checks what it wrote.
fn check_stream(mut translator: impl Translate, data: &[u8]) {
    let mut decoder = SseDecoder::default();
    let mut out = ChunkWriter::new(data.len().is_multiple_of(2));
    let mut events = Vec::new();
    let mut written = Vec::new();
    let mut ended = false;
    'feed: for chunk in data.chunks(piece(data)) {
        if decoder.push(chunk, &mut events).is_err() {
            ended = true;
            break;
        }
        for event in events.drain(..) {
            if !matches!(translator.event(&event, &mut out), Ok(Flow::Continue)) {
                ended = true;
                break 'feed;
            }
        }
        written.extend_from_slice(&out.take());
    }
    if !ended {
        let _ = translator.end(&mut out);
    }
    written.extend_from_slice(&out.take());
    check_openai_stream(&written);
}

/// Whole events only, each a `: ping`, a JSON chunk or error, or a final `[DONE]`; and the
/// relay's scanner passes them all on.
fn check_openai_stream(written: &[u8]) {
    let text = std::str::from_utf8(written).expect("a translated stream is UTF-8");
    let Some(body) = text.strip_suffix("\n\n") else {
        assert!(text.is_empty(), "a translated stream ends with a whole event: {text:?}");
        return;
    };
    let events: Vec<&str> = body.split("\n\n").collect();
    for (i, event) in events.iter().enumerate() {
        if *event == ": ping" {
            continue;
        }
        let data = event.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {event:?}"));
        if data == "[DONE]" {
            assert_eq!(i + 1, events.len(), "[DONE] is the last event: {text:?}");
            continue;
        }
        let chunk: serde_json::Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data:?}"));
        assert!(
            chunk["object"] == "chat.completion.chunk" || chunk.get("error").is_some(),
            "neither a chunk nor an error: {chunk}"
        );
    }
    let mut scanner = EventScanner::default();
    let relayed = scanner.push(Bytes::copy_from_slice(written)).expect("small events are held").events;
    assert_eq!(&relayed[..], written, "the relay would hold back part of a translated stream");
}

/// A config file, with a fixed environment (never the process's): what validates builds.
pub fn config(data: &[u8]) {
    let env: HashMap<String, String> = [
        ("OPENAI_API_KEY", "sk-fuzz"),
        ("ANTHROPIC_API_KEY", "sk-ant-fuzz"),
        ("GEMINI_API_KEY", "gm-fuzz"),
        ("LLM_PROXY_MASTER_KEY", "sk-master"),
        ("EMPTY", ""),
        ("PORT", "8000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let text = String::from_utf8_lossy(data);
    let Ok(config) = crate::Config::parse(&text, Path::new("fuzz.yaml"), &env) else { return };
    // What validates must build (no network: clients connect lazily), and rebuild on a reload.
    let metrics = crate::metrics::Metrics::new();
    let router = match Router::new(&config, &metrics, None) {
        Ok(router) => router,
        Err(err) => panic!("a validated config does not build: {err}"),
    };
    if let Err(err) = Router::new(&config, &metrics, Some(&router)) {
        panic!("a validated config does not reload: {err}");
    }
}

/// A stream chunk size in 1..=64, chosen by the input's first byte.
fn piece(data: &[u8]) -> usize {
    1 + usize::from(data.first().copied().unwrap_or(0) % 64)
}
