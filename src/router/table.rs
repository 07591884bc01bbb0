//! Building the routing table from a config, carrying state over from the previous table by
//! identity: a deployment is the same one across a reload when its model, its `model_id`, its
//! provider's name and its provider's settings (their fingerprint) are unchanged. Then it keeps its health,
//! pauses, load, caps and its provider's connection pools; otherwise it starts fresh.

use crate::accounting::{Price, PriceTable, UnknownPrice};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::retry::RetryBudget;
use super::{Caps, Deployment, Health, ModelRoute, Router};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::providers::{BuildError, Limits, Provider};

/// A built provider and what it was built from.
pub(super) struct BuiltProvider {
    pub provider: Arc<dyn Provider>,
    /// The settings' fingerprint and the limits it was built with.
    identity: (u64, Limits),
}

impl Router {
    /// Builds every provider's client and the routing table from a validated config. With
    /// `previous` (a reload), deployments that are still the same (see the module doc) keep
    /// their state, and unchanged providers their connection pools.
    pub fn new(config: &Config, metrics: &Metrics, previous: Option<&Router>) -> Result<Self, BuildError> {
        Self::build(config, metrics, previous)
    }
}

/// A deployment's price: its own `price:`, else the shipped table's row for its provider's
/// type and model id; a missing one is said once per load when `pricing.unknown_model` is
/// `warn`.
fn price_of(config: &Config, dep: &crate::config::DeploymentConfig) -> Option<Price> {
    if dep.price.is_some() {
        return dep.price;
    }
    let kind = config.providers.iter().find(|p| p.name == dep.provider).map_or("", |p| p.kind.as_str());
    let price = PriceTable::shipped().lookup(kind, &dep.model_id).copied();
    if price.is_none() && config.pricing.unknown_model == UnknownPrice::Warn {
        tracing::warn!(
            provider = %dep.provider,
            model_id = %dep.model_id,
            "no price known for this deployment: its requests cost 0 (set `price:` on it, or pricing.unknown_model)"
        );
    }
    price
}

impl Router {
    fn build(config: &Config, metrics: &Metrics, previous: Option<&Router>) -> Result<Self, BuildError> {
        let router = &config.router;
        let timeouts = router.timeouts();
        let limits =
            Limits { max_response_bytes: router.max_response_bytes, connect_timeout: timeouts.connect };
        let mut providers: HashMap<String, BuiltProvider> = HashMap::new();
        for named in &config.providers {
            let identity = (named.fingerprint, limits);
            let provider = match previous.and_then(|p| p.providers.get(&named.name)) {
                Some(old) if old.identity == identity => Arc::clone(&old.provider),
                _ => named.config.build(&limits)?,
            };
            providers.insert(named.name.clone(), BuiltProvider { provider, identity });
        }
        let mut models = Vec::with_capacity(config.models.len());
        let mut by_name = HashMap::with_capacity(config.models.len());
        for model in &config.models {
            let name: Arc<str> = Arc::from(model.name.as_str());
            let old = previous.and_then(|p| p.model(&model.name)).filter(|m| m.name == name);
            let mut deployments = Vec::with_capacity(model.deployments.len());
            for dep in &model.deployments {
                let built = providers
                    .get(&dep.provider)
                    .ok_or_else(|| BuildError::new(format!("undeclared provider `{}`", dep.provider)))?;
                let provider_name: Arc<str> = Arc::from(dep.provider.as_str());
                let price = price_of(config, dep);
                let kept = old.and_then(|m| {
                    m.deployments.iter().find(|d| {
                        *d.provider_name == *dep.provider
                            && d.fingerprint == built.identity.0
                            && *d.model_id == *dep.model_id
                    })
                });
                let health = match kept {
                    Some(kept) => {
                        kept.health.set_policy(
                            router.failure_threshold,
                            router.cooldown_seconds,
                            router.cooldown_max(),
                        );
                        Arc::clone(&kept.health)
                    }
                    None => Arc::new(Health::with_policy(
                        Arc::clone(&name),
                        Arc::clone(&provider_name),
                        router.failure_threshold,
                        router.cooldown_seconds,
                        router.cooldown_max(),
                    )),
                };
                health.set_max_pause(router.max_pause_seconds);
                let caps = match kept {
                    Some(kept) if kept.caps.rpm == dep.rpm && kept.caps.tpm == dep.tpm => {
                        Arc::clone(&kept.caps)
                    }
                    _ => Arc::new(Caps::new(dep.rpm, dep.tpm)),
                };
                deployments.push(Deployment {
                    price,
                    health,
                    load: kept.map(|k| Arc::clone(&k.load)).unwrap_or_default(),
                    caps,
                    metrics: metrics.deployment(&model.name, &dep.provider),
                    provider_name,
                    fingerprint: built.identity.0,
                    priority: dep.priority,
                    weight: dep.weight,
                    model_id_json: serde_json::Value::from(dep.model_id.as_str()).to_string(),
                    model_id: Arc::from(dep.model_id.as_str()),
                    timeouts: timeouts.with(dep.timeouts),
                    provider: Arc::clone(&built.provider),
                });
            }
            deployments.sort_by_key(|d| d.priority);
            let mut tiers: Vec<Range<usize>> = Vec::new();
            for (i, d) in deployments.iter().enumerate() {
                match tiers.last_mut() {
                    Some(tier) if deployments[tier.start].priority == d.priority => tier.end = i + 1,
                    _ => tiers.push(i..i + 1),
                }
            }
            let index = models.len();
            by_name.insert(Arc::clone(&name), index);
            let aliases: Vec<Arc<str>> = model.aliases.iter().map(|a| Arc::from(a.as_str())).collect();
            for alias in &aliases {
                by_name.insert(Arc::clone(alias), index);
            }
            models.push(Arc::new(ModelRoute {
                metrics: metrics.model(&model.name),
                name,
                aliases,
                deployments,
                tiers,
                strategy: model.strategy.unwrap_or(router.strategy),
                fallbacks: model.fallbacks.iter().map(|f| Arc::from(f.as_str())).collect(),
                context_window_fallbacks: model
                    .context_window_fallbacks
                    .iter()
                    .map(|f| Arc::from(f.as_str()))
                    .collect(),
                budget: RetryBudget::new(router.retry_budget_percent),
            }));
        }
        Ok(Self {
            models,
            by_name,
            providers,
            retries: router.retries,
            retry_backoff: router.retry_backoff_ms,
            panic_routing: router.panic_routing,
            max_stream_bytes: router.max_stream_bytes,
        })
    }
}
