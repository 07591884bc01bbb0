//! Collecting what is wrong with settings while decoding them: every problem at once, each
//! with the path of the field at fault. A leaf: `config` and each provider's settings use it,
//! and it uses neither.

pub mod de;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the field at fault, e.g. `providers.primary.base_url`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Collects problems while decoding; see [`Problems::decode`].
#[derive(Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every problem, in the order found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { path: path.into(), message: message.into() });
    }

    /// Decodes `value` into `T`; on failure records the problem under `path` and returns None.
    pub fn decode<T: DeserializeOwned>(&mut self, path: &str, value: Value) -> Option<T> {
        match serde_path_to_error::deserialize(value) {
            Ok(decoded) => Some(decoded),
            Err(err) => {
                let inner = err.path().to_string();
                let full = match inner.as_str() {
                    "." | "" => path.to_string(),
                    _ if path.is_empty() => inner,
                    _ => format!("{path}.{inner}"),
                };
                self.push(full, err.into_inner().to_string());
                None
            }
        }
    }
}
