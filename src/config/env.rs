//! `${VAR}` and `${VAR:-default}` expansion inside YAML string values.
//!
//! Expansion happens after YAML parsing, on scalar values only, so a secret that contains
//! `:`, `#` or quotes can never change the document's structure, and keys are never expanded.

use std::borrow::Cow;

/// Where variables come from. Tests pass a map; the binary passes the process environment.
pub trait Env {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: std::hash::BuildHasher> Env for std::collections::HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Expands every `${NAME}` and `${NAME:-default}` in `input`; `$${` stands for a literal `${`.
///
/// As in the shell, `:-` applies the default when the variable is unset *or empty*.
/// An unset variable without a default is an error that names it (never its value).
pub fn expand<'a>(input: &'a str, env: &dyn Env) -> Result<Cow<'a, str>, String> {
    if !input.contains("${") {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            // `$${` is an escaped, literal `${`.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unterminated `${{` in {input:?}"))?;
        let reference = &after[..end];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if !is_variable_name(name) {
            return Err(format!("`${{{reference}}}` is not a valid variable reference"));
        }
        match (env.var(name), default) {
            (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<String, String> {
        HashMap::from([
            ("KEY".to_string(), "sk-a:b #c 'd\"".to_string()),
            ("EMPTY".to_string(), String::new()),
        ])
    }

    #[test]
    fn expands_set_unset_and_empty_variables() {
        let env = env();
        assert_eq!(expand("${KEY}", &env).unwrap(), "sk-a:b #c 'd\"");
        assert_eq!(expand("x-${KEY}-y", &env).unwrap(), "x-sk-a:b #c 'd\"-y");
        assert_eq!(expand("${NOPE:-http://h:1/v1}", &env).unwrap(), "http://h:1/v1");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("${NOPE:-}", &env).unwrap(), "");
        assert_eq!(expand("plain $ text", &env).unwrap(), "plain $ text");
        assert_eq!(expand("$${KEY}", &env).unwrap(), "${KEY}");
    }

    #[test]
    fn reports_unset_and_malformed_references() {
        let env = env();
        let err = expand("${NOPE}", &env).unwrap_err();
        assert!(err.contains("NOPE is not set"), "{err}");
        assert!(expand("${KEY", &env).unwrap_err().contains("unterminated"));
        assert!(expand("${1X}", &env).unwrap_err().contains("not a valid"));
        assert!(expand("${}", &env).unwrap_err().contains("not a valid"));
    }
}
