//! Governance on the request path: who is calling (the master key, a virtual key, or nobody
//! on an open proxy), whether the key may call the model, its and its team's limits and
//! budgets at admission, and what the request cost at its end. Reads come from caches; the
//! store is only waited on for a key or a budget not seen before.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};

use super::edge::{check_master_key, presented_key};
use super::error::{ProxyError, openai_duration};
use super::{AppState, Live};
use crate::accounting::Money;
use crate::accounting::period::now;
use crate::api::request::ApiRequest;
use crate::keys::ring::{KeyError, Principal};
use crate::limits::bucket::Reading;
use crate::limits::{self, Admission, Ask, Subject};
use crate::store::Limits;
use crate::usage::Usage;

/// Who is calling, as the edge decided.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The master key: no limits.
    Master,
    /// No master key is configured and no virtual key was presented.
    Open,
    /// A virtual key, with its team.
    Key(Principal),
}

/// Decides who is calling: a presented `sk-lp-…` key is always checked (with or without a
/// master key); anything else must be the master key when one is set.
pub(super) async fn authenticate(
    state: &AppState,
    live: &Live,
    headers: &HeaderMap,
) -> Result<Caller, ProxyError> {
    if let Some(presented) = presented_key(headers)
        && let Some(id) = crate::keys::id_of(presented)
    {
        return match state.keyring().resolve(&live.code_keys, id, presented, now()).await {
            Ok(principal) => Ok(Caller::Key(principal)),
            Err(error) => {
                let governance = &state.metrics().governance;
                governance.key_refused(error.label());
                if error == KeyError::Unavailable {
                    governance.store_up.set(0);
                    governance.store_errors.inc();
                }
                Err(error.into())
            }
        };
    }
    check_master_key(live, headers)?;
    Ok(if live.master_key.is_some() { Caller::Master } else { Caller::Open })
}

/// Whether `model` matches one of `allowed` (exact names, or globs with `*`); an empty list
/// allows every model.
pub fn allows(allowed: &[String], model: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|pattern| glob(pattern.as_bytes(), model.as_bytes()))
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// A request let through governance: what it holds, to settle at its end.
#[derive(Debug, Default)]
pub(super) struct Governed {
    admission: Option<Admission>,
    /// The `x-ratelimit-*` readings at admission (requests, tokens).
    readings: (Option<Reading>, Option<Reading>),
    /// `x-llm-proxy-budget-warning`, when a soft budget is passed.
    warning: Option<HeaderValue>,
}

/// Checks the key may call this model, then admits the request against its key's and team's
/// limits (reserving the estimated tokens and cost), or refuses it.
pub(super) async fn admit(
    state: &AppState,
    live: &Live,
    caller: &Caller,
    request: &ApiRequest,
) -> Result<Governed, ProxyError> {
    let model = request.model();
    let route = live.router.model(model);
    if live.reject_unpriced && route.is_some_and(|r| r.deployments.iter().any(|d| d.price.is_none())) {
        return Err(ProxyError::PriceUnknown { model: model.to_string() });
    }
    let Caller::Key(principal) = caller else { return Ok(Governed::default()) };
    let team = principal.team.as_deref();
    if !allows(&principal.key.models, model) || team.is_some_and(|t| !allows(&t.models, model)) {
        state.metrics().governance.key_refused("model_not_allowed");
        return Err(ProxyError::ModelNotAllowed { model: model.to_string() });
    }
    let now = now();
    let mut subjects = Vec::with_capacity(2);
    let key_name = || format!("key:{}", principal.key.id);
    if principal.key.limits != Limits::default() {
        subjects.push(subject(state, key_name(), &principal.key.limits, now).await?);
    }
    if let Some(team) = team
        && team.limits != Limits::default()
    {
        subjects.push(subject(state, format!("team:{}", team.id), &team.limits, now).await?);
    }
    if subjects.is_empty() {
        return Ok(Governed::default());
    }
    let output = request.max_output_tokens().unwrap_or(0);
    let input = (request.body().len() / 4) as u64;
    let price = route.and_then(|r| r.deployments.first()).and_then(|d| d.price.as_ref());
    let estimate = Usage { prompt_tokens: input, completion_tokens: output, ..Usage::default() };
    let cost = price.map_or(Money::ZERO, |p| p.cost(&estimate));
    let admission =
        limits::admit(&subjects, Ask { tokens: input + output, cost, now }).map_err(|refusal| {
            state.metrics().governance.limit_refused(refusal.label());
            ProxyError::Limited(refusal)
        })?;
    let mut warning = None;
    for (subject, exceeded, first) in &admission.warnings {
        state.metrics().governance.soft_budget_exceeded.inc();
        if *first {
            tracing::warn!(subject = %subject, limit_usd = %exceeded.limit, spent_usd = %exceeded.spent, "soft budget exceeded; requests are still served");
        }
        let text = format!(
            "{subject} soft budget ${} reached (${} spent this period)",
            exceeded.limit, exceeded.spent
        );
        warning = HeaderValue::from_str(&text).ok();
    }
    Ok(Governed { readings: admission.readings(), admission: Some(admission), warning })
}

/// The limit state of a key or team: the one in memory when its limits are unchanged, else
/// a new one with the period's spend read from the store (once, however many requests ask).
async fn subject(
    state: &AppState,
    name: String,
    limits: &Limits,
    now: i64,
) -> Result<Arc<Subject>, ProxyError> {
    let subjects = state.subjects();
    if let Some(known) = subjects.get(name.as_str()).await {
        if &known.limits == limits {
            return Ok(known);
        }
        subjects.invalidate(name.as_str()).await;
    }
    let store = state.keyring().store().cloned();
    let timeout = state.store_timeout();
    let (key, limits) = (Arc::<str>::from(name), limits.clone());
    let loaded = subjects
        .try_get_with(Arc::clone(&key), async move {
            let spent = match (&store, &limits.budget) {
                (Some(store), Some(budget)) => {
                    let since = budget.period.start(now);
                    match tokio::time::timeout(timeout, store.spend_since(&key, since)).await {
                        Ok(Ok(spent)) => spent,
                        Ok(Err(error)) => return Err(error.to_string()),
                        Err(_) => return Err("timed out".to_string()),
                    }
                }
                _ => Money::ZERO,
            };
            Ok::<_, String>(Arc::new(Subject::new(key, limits, spent, now)))
        })
        .await;
    loaded.map_err(|reason| {
        state.metrics().governance.store_errors.inc();
        state.metrics().governance.store_up.set(0);
        tracing::warn!(reason = %reason, "a budget's spend could not be read from the store; the request is refused with 503");
        ProxyError::Key(KeyError::Unavailable)
    })
}

impl Governed {
    /// Settles the reservation with the real usage and cost.
    pub(super) fn settle(&mut self, usage: Option<Usage>, cost: Money) {
        if let Some(admission) = self.admission.take() {
            admission.settle(usage.map_or(0, |u| u.total()), cost, now());
        }
    }

    /// Puts the key's `x-ratelimit-*` headers (OpenAI's names) on a response, over any an
    /// upstream sent: the client's limits are its key's, not the proxy's provider account's.
    pub(super) fn decorate(&self, headers: &mut HeaderMap) {
        use axum::http::HeaderName;
        const REQUESTS: [HeaderName; 3] = [
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ];
        const TOKENS: [HeaderName; 3] = [
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ];
        let (requests, tokens) = self.readings;
        for (names, reading) in [(REQUESTS, requests), (TOKENS, tokens)] {
            let Some(reading) = reading else { continue };
            let [limit, remaining, reset] = names;
            headers.insert(limit, HeaderValue::from(reading.limit));
            headers.insert(remaining, HeaderValue::from(reading.remaining));
            let until = openai_duration(reading.reset.max(Duration::from_millis(1)));
            headers.insert(reset, HeaderValue::from_str(&until).unwrap_or(HeaderValue::from_static("0s")));
        }
        if let Some(warning) = &self.warning {
            headers.insert("x-llm-proxy-budget-warning", warning.clone());
        }
    }
}

/// The whole governance path of one request, as the edge and the handler run it
/// (authenticate, admit, settle, the ledger record): for `benches/governance.rs`.
#[doc(hidden)]
pub async fn bench_request(state: &AppState, headers: &HeaderMap, request: &ApiRequest) -> bool {
    let live = state.live();
    let Ok(caller) = authenticate(state, &live, headers).await else { return false };
    let Ok(mut governed) = admit(state, &live, &caller, request).await else { return false };
    let usage = Usage { prompt_tokens: 120, completion_tokens: 40, ..Usage::default() };
    let cost = live
        .router
        .model(request.model())
        .and_then(|r| r.deployments[0].price)
        .map_or(Money::ZERO, |p| p.cost(&usage));
    governed.settle(Some(usage), cost);
    let mut headers = HeaderMap::new();
    governed.decorate(&mut headers);
    let mut ctx = super::RequestCtx::new(
        HeaderValue::from_static("bench"),
        axum::http::Method::POST,
        axum::http::Uri::from_static("/v1/chat/completions"),
    );
    if let Caller::Key(principal) = &caller {
        ctx.key_id = Some(Arc::from(principal.key.id.as_str()));
    }
    ctx.endpoint = Some("chat");
    ctx.usage = Some(usage);
    ctx.cost = Some(cost);
    ctx.finish(state.ledger(), 200, None);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        let allowed = |patterns: &[&str], model| {
            allows(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>(), model)
        };
        assert!(allowed(&[], "anything"));
        assert!(allowed(&["gpt-4o"], "gpt-4o"));
        assert!(!allowed(&["gpt-4o"], "gpt-4o-mini"));
        assert!(allowed(&["gpt-4o*"], "gpt-4o-mini"));
        assert!(allowed(&["claude-*-4-5", "echo"], "claude-sonnet-4-5"));
        assert!(!allowed(&["claude-*-4-5"], "claude-sonnet-4-6"));
        assert!(allowed(&["*"], ""));
        assert!(allowed(&["a*b*c"], "aXXbYYc"));
        assert!(!allowed(&["a*b*c"], "aXXbYY"));
    }
}
