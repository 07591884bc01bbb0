//! Checks shared by every provider's settings: base URLs, keys, extra headers.

use std::collections::BTreeMap;

use http::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::validate::Problems;

/// Records a problem unless `url` is an absolute `http://` or `https://` URL.
pub(crate) fn check_base_url(url: &str, path: &str, problems: &mut Problems) -> bool {
    match url.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => true,
        Ok(_) => {
            problems.push(format!("{path}.base_url"), "must be an http:// or https:// URL");
            false
        }
        Err(err) => {
            problems.push(format!("{path}.base_url"), format!("not a URL: {err}"));
            false
        }
    }
}

/// Records a problem when a key is missing (and `required`) or cannot be sent in a header.
pub(crate) fn check_api_key(
    key: Option<&SecretString>,
    required: bool,
    path: &str,
    problems: &mut Problems,
) -> bool {
    match key.map(ExposeSecret::expose_secret) {
        None | Some("") if required => {
            problems
                .push(format!("{path}.api_key"), "required (use `${VAR}` to read it from the environment)");
            false
        }
        // `Bearer ` is the longest prefix any adapter adds; a key that fits after it fits anywhere.
        Some(key) if HeaderValue::from_str(&format!("Bearer {key}")).is_err() => {
            problems.push(format!("{path}.api_key"), "contains characters not allowed in a header");
            false
        }
        _ => true,
    }
}

/// Records a problem for every extra header whose name or value HTTP does not allow.
pub(crate) fn check_headers(
    headers: &BTreeMap<String, SecretString>,
    path: &str,
    problems: &mut Problems,
) -> bool {
    let mut ok = true;
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(format!("{path}.headers.{name}"), "not a valid header name");
            ok = false;
        }
        if HeaderValue::from_str(value.expose_secret()).is_err() {
            problems
                .push(format!("{path}.headers.{name}"), "value contains characters not allowed in a header");
            ok = false;
        }
    }
    ok
}

/// `forward_headers:` must name headers, and none that carries credentials.
pub(crate) fn check_forward_headers(names: &[String], path: &str, problems: &mut Problems) -> bool {
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(format!("{path}.forward_headers[{i}]"), "not a valid header name");
            ok = false;
        } else if matches!(
            lower.as_str(),
            "authorization"
                | "x-api-key"
                | "api-key"
                | "x-goog-api-key"
                | "cookie"
                | "host"
                | "content-length"
        ) {
            problems.push(
                format!("{path}.forward_headers[{i}]"),
                format!("`{name}` cannot be forwarded: it carries the client's credentials or framing"),
            );
            ok = false;
        }
    }
    ok
}

/// `true`, for settings that default to on.
pub(crate) fn yes() -> bool {
    true
}
