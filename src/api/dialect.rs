//! The three client dialects the proxy speaks at its edge.

/// Which API a client speaks: the endpoint it called decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions: `POST /v1/chat/completions` (and embeddings).
    Chat,
    /// OpenAI Responses: `POST /v1/responses`.
    Responses,
    /// Anthropic Messages: `POST /v1/messages`.
    Messages,
}

impl Dialect {
    /// The dialect's name in logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chat => "chat_completions",
            Self::Responses => "responses",
            Self::Messages => "anthropic_messages",
        }
    }
}
