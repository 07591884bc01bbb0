//! Azure OpenAI: OpenAI's wire format, with the deployment in the URL, an `api-version`
//! query parameter and the `api-key` header; the Responses API at the v1 path
//! (`/openai/v1/responses`). Bodies and streams pass through untouched.

mod config;

pub use config::AzureConfig;

use futures_util::future::BoxFuture;
use http::Uri;
use secrecy::ExposeSecret;

use super::client::{Upstream, extra_headers, secret_header};
use super::openai::pass_through;
use super::{BuildError, Call, Dialect, Limits, Provider, ProviderError, Reply};

/// An Azure OpenAI resource with its own connection pool.
pub struct Azure {
    upstream: Upstream,
    base_url: String,
    api_version: String,
    stream_usage: bool,
    responses_api: bool,
}

impl Azure {
    /// Builds the adapter and its pooled client from validated settings.
    pub fn new(config: &AzureConfig, limits: &Limits) -> Result<Self, BuildError> {
        let mut headers = extra_headers(&config.headers)?;
        let key = config.api_key.as_ref().map(ExposeSecret::expose_secret).unwrap_or_default();
        headers.insert("api-key", secret_header(key, "api_key")?);
        Ok(Self {
            upstream: Upstream::new(headers, &config.forward_headers, limits),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_version: config.api_version.clone(),
            stream_usage: config.stream_usage,
            responses_api: config.responses_api,
        })
    }

    /// `{base}/openai/deployments/{deployment}/{operation}?api-version=…`, the deployment
    /// percent-encoded so that no name can change the path.
    fn uri(&self, deployment: &str, operation: &str) -> Result<Uri, ProviderError> {
        let deployment = super::client::encode_path_segment(deployment);
        format!(
            "{}/openai/deployments/{deployment}/{operation}?api-version={}",
            self.base_url, self.api_version
        )
        .parse()
        .map_err(|_| {
            ProviderError::unsupported(format!("`{deployment}` cannot be an Azure deployment name"), None)
        })
    }
}

impl Provider for Azure {
    fn speaks(&self, dialect: Dialect) -> bool {
        dialect == Dialect::Chat || (dialect == Dialect::Responses && self.responses_api)
    }

    fn forward_headers(&self) -> &[http::HeaderName] {
        self.upstream.forward_headers()
    }

    fn asks_for_stream_usage(&self) -> bool {
        self.stream_usage
    }

    fn chat(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(async move {
            let uri = match call.dialect {
                // The v1 API: one path for every deployment (named by `model` in the body).
                Dialect::Responses => format!("{}/openai/v1/responses", self.base_url)
                    .parse()
                    .map_err(|_| ProviderError::unsupported("the Azure base URL cannot take a path", None))?,
                _ => self.uri(&call.model_id, "chat/completions")?,
            };
            pass_through(&self.upstream, uri, call).await
        })
    }

    fn embeddings(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(async move {
            let uri = self.uri(&call.model_id, "embeddings")?;
            pass_through(&self.upstream, uri, call).await
        })
    }
}
