//! Redaction of credentials from bodies kept in the ledger (`ledger.bodies: true`): values of
//! fields named like secrets, and anything shaped like an API key or a bearer token wherever
//! it appears (a user pasting a key into a prompt included).

use serde_json::Value;

/// Field names whose values are always replaced (compared case-insensitively).
const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "authorization",
    "password",
    "secret",
    "access_token",
    "refresh_token",
    "client_secret",
];

const REDACTED: &str = "[redacted]";

/// Key prefixes whose following run of key characters is a credential.
const KEY_PREFIXES: &[&str] = &["sk-", "sk_", "Bearer ", "AKIA", "AIza", "xoxb-", "ghp_"];

/// A body fit to keep: JSON with secret fields and key-shaped strings replaced; other text
/// with key-shaped runs replaced.
pub fn redact(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            redact_value(&mut value);
            value.to_string()
        }
        Err(_) => redact_text(&String::from_utf8_lossy(body)),
    }
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, field) in map.iter_mut() {
                if SECRET_FIELDS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                    *field = Value::String(REDACTED.to_string());
                } else {
                    redact_value(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(text) if KEY_PREFIXES.iter().any(|p| text.contains(p)) => {
            *text = redact_text(text);
        }
        _ => {}
    }
}

/// Replaces each prefix-and-key-characters run of at least 16 characters after the prefix.
fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for prefix in KEY_PREFIXES {
            if let Some(tail) = rest.strip_prefix(prefix) {
                let run =
                    tail.bytes().take_while(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b)).count();
                if run >= 16 {
                    out.push_str(prefix);
                    out.push_str(REDACTED);
                    rest = &tail[run..];
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_ledger() {
        let body = br#"{"model":"m","api_key":"abc","messages":[{"role":"user","content":"my key is sk-proj-0123456789abcdefXYZ ok"}],"headers":{"Authorization":"Bearer x"}}"#;
        let kept = redact(body);
        assert!(!kept.contains("0123456789abcdef"), "{kept}");
        assert!(!kept.contains("\"abc\""), "{kept}");
        assert!(kept.contains("my key is sk-[redacted] ok"), "{kept}");
        assert!(kept.contains(r#""Authorization":"[redacted]""#), "{kept}");
        assert_eq!(redact(b"not json Bearer eyJhbGciOiJIUzI1NiJ9.payload"), "not json Bearer [redacted]");
        assert_eq!(redact(b"short sk-abc stays"), "short sk-abc stays");
    }
}
