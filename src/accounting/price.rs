//! What a request costs: per-token prices, the table shipped inside the binary (generated from
//! LiteLLM's by `scripts/update-prices`, see docs/pricing.md), per-deployment overrides, and
//! what to do about a model with no price.
//!
//! Prices are integers of **femto-dollars per token** (1 fUSD = 10⁻¹⁵ USD). Why that unit:
//! 1. Prices are published in USD per million tokens with a few decimals ($0.075/M). $X per
//!    million tokens is X · 10⁹ fUSD per token, so every price with up to nine decimals per
//!    million is an exact integer. The generator writes at most nine; the shipped prices have
//!    at most five (the cheapest is $0.001/M = 1,000,000 fUSD per token).
//! 2. A femto-dollar is a millionth of the ledger's nano-dollar ([`Money`]), so the sum of a
//!    request's tokens times their rates is exact in `u128`, and rounded once, at the end,
//!    to whole nano-dollars. A pico-dollar unit would not be exact for a price like
//!    $0.141953125/M, which LiteLLM lists for a provider we do not ship (yet).
//! 3. The limit on a price ([`MAX_USD_PER_MILLION`], 10¹³ fUSD) times any `u64` token count,
//!    five times over, stays far below `u128::MAX`.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::Money;
use crate::usage::Usage;

/// Femto-dollars per token in a price of 1 USD per million tokens.
pub const FEMTOS_PER_USD_PER_MILLION: u64 = 1_000_000_000;

/// Femto-dollars in one nano-dollar, the unit of [`Money`].
const FEMTOS_PER_NANO: u128 = 1_000_000;

/// [`MAX_USD_PER_MILLION`] in femto-dollars per token.
const MAX_FEMTOS: u64 = 10_000 * FEMTOS_PER_USD_PER_MILLION;

/// The highest price accepted, in USD per million tokens. The costliest model LiteLLM lists
/// charges $600/M; a price over this is a typo.
pub const MAX_USD_PER_MILLION: f64 = 10_000.0;

/// The lowest non-zero price accepted, in USD per million tokens: below it the number is
/// almost surely a per-token price ($0.0000025 for $2.50/M). The cheapest listed is $0.001/M.
pub const MIN_USD_PER_MILLION: f64 = 0.0001;

/// The rates of one model at one provider, in femto-dollars per token (see the module doc).
/// Every rate is set: a kind of token the provider does not price separately carries the
/// rate it falls back to (cached input and cache writes: input; reasoning: output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Price {
    /// An input token neither read from nor written to the prompt cache.
    pub input: u64,
    /// An output token that is not reasoning.
    pub output: u64,
    /// An input token read from the prompt cache.
    pub cached_input: u64,
    /// An input token written to the prompt cache.
    pub cache_write: u64,
    /// An output token spent reasoning.
    pub reasoning: u64,
}

// === impl Price ===

impl Price {
    /// Costs nothing.
    pub const FREE: Price = Price { input: 0, output: 0, cached_input: 0, cache_write: 0, reasoning: 0 };

    /// From rates in USD per million tokens, as people and price pages write them; a `None`
    /// rate falls back (cached input and cache writes to input, reasoning to output). The
    /// error names the rate that is negative, not finite, or outside
    /// [`MIN_USD_PER_MILLION`]..=[`MAX_USD_PER_MILLION`].
    ///
    /// ```
    /// # use llm_proxy::accounting::Price;
    /// let gpt_4o = Price::from_per_million_usd(2.5, 10.0, Some(1.25), None, None).unwrap();
    /// assert_eq!(gpt_4o.input, 2_500_000_000); // femto-dollars per token
    /// assert_eq!(gpt_4o.cache_write, gpt_4o.input);
    /// ```
    pub fn from_per_million_usd(
        input: f64,
        output: f64,
        cached_input: Option<f64>,
        cache_write: Option<f64>,
        reasoning: Option<f64>,
    ) -> Result<Price, String> {
        let input = femtos_per_token("input", input)?;
        let output = femtos_per_token("output", output)?;
        let or =
            |name, usd: Option<f64>, fallback| usd.map_or(Ok(fallback), |usd| femtos_per_token(name, usd));
        Ok(Price {
            input,
            output,
            cached_input: or("cached_input", cached_input, input)?,
            cache_write: or("cache_write", cache_write, input)?,
            reasoning: or("reasoning", reasoning, output)?,
        })
    }

    /// What `usage` costs at these rates, rounded once to the nano-dollar, half up.
    ///
    /// Cached and cache-write tokens are part of `prompt_tokens` and reasoning tokens part of
    /// `completion_tokens` (see [`Usage`]), so each token is priced exactly once: uncached
    /// input = prompt − cached − cache writes, visible output = completion − reasoning. A
    /// usage whose parts exceed its total is clamped, never billed for more tokens than it
    /// reports.
    pub fn cost(&self, usage: &Usage) -> Money {
        let cached = usage.cached_tokens.unwrap_or(0).min(usage.prompt_tokens);
        let cache_write = usage.cache_write_tokens.unwrap_or(0).min(usage.prompt_tokens - cached);
        let uncached = usage.prompt_tokens - cached - cache_write;
        let reasoning = usage.reasoning_tokens.unwrap_or(0).min(usage.completion_tokens);
        let visible = usage.completion_tokens - reasoning;
        let femtos = [
            (uncached, self.input),
            (cached, self.cached_input),
            (cache_write, self.cache_write),
            (visible, self.output),
            (reasoning, self.reasoning),
        ]
        .into_iter()
        // Saturating only matters for a hand-built `Price` over the limits; see the module doc.
        .fold(0u128, |sum, (tokens, rate)| sum.saturating_add(u128::from(tokens) * u128::from(rate)));
        let nanos = femtos.saturating_add(FEMTOS_PER_NANO / 2) / FEMTOS_PER_NANO;
        Money(i64::try_from(nanos).unwrap_or(i64::MAX))
    }
}

/// A rate in USD per million tokens as femto-dollars per token, or why it is not a price.
fn femtos_per_token(name: &str, usd: f64) -> Result<u64, String> {
    if !usd.is_finite() {
        return Err(format!("`{name}` must be a number of USD per million tokens, not {usd}"));
    }
    if usd < 0.0 {
        return Err(format!("`{name}`: {usd} USD per million tokens is negative"));
    }
    if usd > MAX_USD_PER_MILLION {
        return Err(format!(
            "`{name}`: {usd} USD per million tokens is over the limit of {MAX_USD_PER_MILLION}"
        ));
    }
    if usd != 0.0 && usd < MIN_USD_PER_MILLION {
        return Err(format!(
            "`{name}`: {usd} USD per million tokens is below {MIN_USD_PER_MILLION}; prices are per \
             million tokens (2.5 for $2.50 per million), not per token"
        ));
    }
    // The product is at most 10¹³ (< 2⁵³), so for a price written with up to nine decimals
    // it rounds to the exact integer, and the cast cannot truncate.
    Ok((usd * FEMTOS_PER_USD_PER_MILLION as f64).round() as u64)
}

/// An exact decimal of USD per million tokens (`2.5`, `0.075`, `10`) as femto-dollars per
/// token: the shipped table is parsed without floats, so it is what the generator wrote.
fn parse_per_million(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a price in USD per million tokens");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
        return Err(bad());
    }
    if fraction.len() > 9 {
        return Err(format!("`{text}` has more than nine decimals, finer than a femto-dollar per token"));
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let fraction = fraction.bytes().chain(std::iter::repeat(b'0')).take(9);
    let fraction = fraction.fold(0u64, |sum, digit| sum * 10 + u64::from(digit - b'0'));
    let femtos = whole.checked_mul(FEMTOS_PER_USD_PER_MILLION).and_then(|w| w.checked_add(fraction));
    match femtos {
        Some(femtos) if femtos <= MAX_FEMTOS => Ok(femtos),
        _ => Err(format!("`{text}` is over the limit of {MAX_USD_PER_MILLION} USD per million tokens")),
    }
}

/// The model id without a release date at its end (`claude-sonnet-4-5-20250929`,
/// `gpt-4o-2024-08-06`), if it has one. Shorter stamps (`-0613`, `-2411`) are left alone:
/// they are as often versions as dates.
fn undated(model: &str) -> Option<&str> {
    let date = |digits: &[u8]| {
        let number = |range: std::ops::Range<usize>| {
            digits[range]
                .iter()
                .try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
        };
        let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
        ((2000..2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)).then_some(())
    };
    let bytes = model.as_bytes();
    if let Some(at) = bytes.len().checked_sub(9)
        && at > 0
        && bytes[at] == b'-'
        && date(&bytes[at + 1..]).is_some()
    {
        return model.get(..at);
    }
    if let Some(at) = bytes.len().checked_sub(11)
        && at > 0
        && bytes[at] == b'-'
        && bytes[at + 5] == b'-'
        && bytes[at + 8] == b'-'
    {
        let tail = &bytes[at + 1..];
        let digits = [tail[0], tail[1], tail[2], tail[3], tail[5], tail[6], tail[8], tail[9]];
        return date(&digits).and_then(|()| model.get(..at));
    }
    None
}

/// Prices by provider type and model id: the table shipped in the binary, or one parsed from
/// the same TSV format (see docs/pricing.md).
#[derive(Debug, Default)]
pub struct PriceTable {
    /// Provider type → model id → price. Two levels, so that a lookup by two `&str`s hashes
    /// borrowed keys and allocates nothing.
    providers: HashMap<Box<str>, HashMap<Box<str>, Price>>,
    rows: usize,
}

static SHIPPED: LazyLock<PriceTable> = LazyLock::new(|| {
    // A unit test parses the same bytes, so this cannot fail in a binary that passed its tests.
    PriceTable::parse(include_str!("prices.tsv")).expect("src/accounting/prices.tsv parses")
});

// === impl PriceTable ===

impl PriceTable {
    /// The table compiled into the binary from `src/accounting/prices.tsv`, parsed on first use.
    pub fn shipped() -> &'static PriceTable {
        &SHIPPED
    }

    /// Parses the TSV format of `prices.tsv`: `#` comments, then rows of `provider`, `model`
    /// and five rates in USD per million tokens as exact decimals (`input`, `output`, and
    /// `cached_input`, `cache_write`, `reasoning`, which may be empty). The error names the
    /// first bad line.
    pub fn parse(tsv: &str) -> Result<PriceTable, String> {
        let mut table = PriceTable::default();
        for (index, line) in tsv.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |why: String| format!("line {}: {why}", index + 1);
            let columns: Vec<&str> = line.split('\t').collect();
            let [provider, model, input, output, cached_input, cache_write, reasoning] = columns[..] else {
                return Err(fail(format!("{} columns, not 7", columns.len())));
            };
            if provider.is_empty() || model.is_empty() {
                return Err(fail("a row needs a provider and a model".into()));
            }
            let rate = |text: &str| parse_per_million(text).map_err(fail);
            let or = |text: &str, fallback| if text.is_empty() { Ok(fallback) } else { rate(text) };
            let (input, output) = (rate(input)?, rate(output)?);
            let price = Price {
                input,
                output,
                cached_input: or(cached_input, input)?,
                cache_write: or(cache_write, input)?,
                reasoning: or(reasoning, output)?,
            };
            let models = table.providers.entry(provider.into()).or_default();
            if models.insert(model.into(), price).is_some() {
                return Err(fail(format!("{provider} {model} is listed twice")));
            }
            table.rows += 1;
        }
        table.add_undated_aliases();
        Ok(table)
    }

    /// Gives a dated model whose undated name is not listed that name too, the latest date
    /// winning: a provider's undated alias points at its newest snapshot.
    fn add_undated_aliases(&mut self) {
        for models in self.providers.values_mut() {
            // The key orders by date, then by id, so that the choice never depends on the
            // map's iteration order.
            let mut aliases: HashMap<&str, ((String, &str), Price)> = HashMap::new();
            for (model, price) in models.iter() {
                let Some(alias) = undated(model).filter(|alias| !models.contains_key(*alias)) else {
                    continue;
                };
                let date: String = model[alias.len()..].chars().filter(char::is_ascii_digit).collect();
                let key = (date, &**model);
                if aliases.get(alias).is_none_or(|(latest, _)| key > *latest) {
                    aliases.insert(alias, (key, *price));
                }
            }
            let aliases: Vec<(Box<str>, Price)> =
                aliases.into_iter().map(|(alias, (_, price))| (alias.into(), price)).collect();
            models.extend(aliases);
        }
    }

    /// Rows in the TSV (the undated aliases the table adds are not counted).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The price of `model_id` at a provider of type `provider_type` (`openai`, `groq`, …).
    /// Allocates nothing. Tried in order, the first hit winning:
    /// 1. the row of this provider and model id;
    /// 2. this provider's row of the model id without its date (`claude-sonnet-4-5-20250929`
    ///    → `claude-sonnet-4-5`); the reverse, an undated id whose only rows are dated, is an
    ///    alias the table added at load, the latest date winning;
    /// 3. for the self-hosted presets (`ollama`, `vllm`, `lmstudio`): free, since the
    ///    hardware is the operator's own (a `price:` on the deployment can say otherwise);
    /// 4. for `azure` and the other OpenAI-compatible presets (`groq`, `openrouter`, …):
    ///    steps 1 and 2 in `openai`'s rows, since they serve OpenAI's models under OpenAI's
    ///    ids (Azure deployments are often named after the model).
    pub fn lookup(&self, provider_type: &str, model_id: &str) -> Option<&Price> {
        static FREE: Price = Price::FREE;
        self.in_provider(provider_type, model_id).or_else(|| {
            if SELF_HOSTED.contains(&provider_type) {
                return Some(&FREE);
            }
            if provider_type == "openai" || !speaks_openai(provider_type) {
                return None;
            }
            self.in_provider("openai", model_id)
        })
    }

    fn in_provider(&self, provider_type: &str, model_id: &str) -> Option<&Price> {
        let models = self.providers.get(provider_type)?;
        models.get(model_id).or_else(|| models.get(undated(model_id)?))
    }
}

/// Presets that run on the operator's own machines.
const SELF_HOSTED: [&str; 3] = ["ollama", "vllm", "lmstudio"];

/// Whether a provider type other than `openai` speaks OpenAI's wire format, and so may well
/// serve OpenAI's models under OpenAI's ids.
fn speaks_openai(provider_type: &str) -> bool {
    provider_type == "azure"
        || crate::providers::openai::PRESETS.iter().any(|preset| preset.name == provider_type)
}

/// A deployment's own price, in USD per million tokens as price pages write them: the
/// `price:` setting of a deployment, which replaces the shipped table's row.
///
/// ```yaml
/// price: {input: 2.5, output: 10, cached_input: 1.25}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    /// An uncached input token.
    pub input: f64,
    /// A visible output token.
    pub output: f64,
    /// An input token read from the prompt cache; `input` if unset.
    pub cached_input: Option<f64>,
    /// An input token written to the prompt cache; `input` if unset.
    pub cache_write: Option<f64>,
    /// An output token spent reasoning; `output` if unset.
    pub reasoning: Option<f64>,
}

// === impl PriceOverride ===

impl PriceOverride {
    /// The price, or a message naming the rate that is negative, not a number, or out of
    /// range (see [`Price::from_per_million_usd`]).
    pub fn to_price(&self) -> Result<Price, String> {
        Price::from_per_million_usd(
            self.input,
            self.output,
            self.cached_input,
            self.cache_write,
            self.reasoning,
        )
    }
}

/// What a request to a model with no price (no override, no row in the table) costs: the
/// `pricing.unknown_model` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPrice {
    /// Nothing, with one log line per model and a metric, so the gap gets noticed.
    #[default]
    Warn,
    /// Nothing, silently (self-hosted models, say).
    Zero,
    /// The request is refused with 400 before any upstream call.
    Reject,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(
        input: f64,
        output: f64,
        cached: Option<f64>,
        write: Option<f64>,
        reasoning: Option<f64>,
    ) -> Price {
        Price::from_per_million_usd(input, output, cached, write, reasoning).unwrap()
    }

    fn usage(prompt: u64, cached: u64, write: u64, completion: u64, reasoning: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: Some(cached),
            cache_write_tokens: Some(write),
            reasoning_tokens: Some(reasoning),
        }
    }

    #[test]
    fn the_shipped_table_parses_whole() {
        let table = PriceTable::parse(include_str!("prices.tsv")).unwrap();
        assert!(table.len() > 500, "only {} rows", table.len());
        assert_eq!(PriceTable::shipped().len(), table.len());
        assert_eq!(MAX_FEMTOS as f64, MAX_USD_PER_MILLION * FEMTOS_PER_USD_PER_MILLION as f64);
        for provider in ["openai", "azure", "anthropic", "gemini", "groq", "mistral", "deepseek", "mock"] {
            assert!(table.providers.contains_key(provider), "no {provider} rows");
        }
    }

    #[test]
    fn well_known_models_carry_litellm_prices() {
        let table = PriceTable::shipped();
        let price = |provider, model| *table.lookup(provider, model).unwrap();
        // LiteLLM 1.110.2, USD per token: input_cost_per_token, output_cost_per_token,
        // cache_read_input_token_cost, cache_creation_input_token_cost,
        // output_cost_per_reasoning_token; times a million here.
        assert_eq!(price("openai", "gpt-4o"), usd(2.5, 10.0, Some(1.25), None, None));
        assert_eq!(price("openai", "gpt-4o-mini"), usd(0.15, 0.6, Some(0.075), None, None));
        assert_eq!(price("anthropic", "claude-sonnet-4-5"), usd(3.0, 15.0, Some(0.3), Some(3.75), None));
        assert_eq!(price("gemini", "gemini-2.5-flash"), usd(0.3, 2.5, Some(0.03), None, Some(2.5)));
        assert_eq!(price("openai", "gpt-4o-mini").cached_input, 75_000_000);
        assert_eq!(price("mock", "mock-echo"), usd(1.0, 2.0, Some(0.5), Some(1.25), Some(4.0)));
        assert_eq!(price("mock", "mock-free"), Price::FREE);
    }

    #[test]
    fn every_kind_of_token_is_priced_once_at_its_own_rate() {
        let echo = *PriceTable::shipped().lookup("mock", "mock-echo").unwrap();
        // 1,000 input tokens: 300 cached, 200 written to the cache, so 500 uncached; 500
        // output tokens, 120 of them reasoning. At $1/M a token costs 1,000 nano-dollars.
        let cost = echo.cost(&usage(1000, 300, 200, 500, 120));
        let by_hand = 500 * 1000 + 300 * 500 + 200 * 1250 + 380 * 2000 + 120 * 4000;
        assert_eq!(cost, Money(by_hand));
        assert_eq!(cost, Money(2_140_000));
        // Without the details every token is plain input or output.
        let plain = Usage { prompt_tokens: 1000, completion_tokens: 500, ..Usage::default() };
        assert_eq!(echo.cost(&plain), Money(1000 * 1000 + 500 * 2000));
        // Parts over the totals are clamped: never more tokens billed than reported.
        assert_eq!(echo.cost(&usage(10, 8, 8, 5, 9)), Money(8 * 500 + 2 * 1250 + 5 * 4000));
        assert_eq!(Price::FREE.cost(&usage(u64::MAX, 1, 1, u64::MAX, 1)), Money::ZERO);
    }

    #[test]
    fn a_request_is_rounded_once_to_the_nano_dollar_half_up() {
        // $1 per million tokens is 1,000 nano-dollars a token, so only a price with more than
        // three decimals per million has a fraction of a nano-dollar per token. A cached
        // token of groq's gpt-oss-20b ($0.0375/M) costs 37.5 nano-dollars: one rounds up to
        // 38, three cost 112.5, rounded once to 113 (a per-token rounding would say 114).
        let oss = *PriceTable::shipped().lookup("groq", "openai/gpt-oss-20b").unwrap();
        assert_eq!(oss.cost(&usage(1, 1, 0, 0, 0)), Money(38));
        assert_eq!(oss.cost(&usage(3, 3, 0, 0, 0)), Money(113));
        assert_eq!(oss.cost(&usage(2, 2, 0, 0, 0)), Money(75));
        // Under $0.001 per million a token costs less than a nano-dollar. One input token
        // (0.3) and one output token (0.4) would each round to 0 alone; the request's 0.7
        // rounds to 1.
        let tiny = usd(0.0003, 0.0004, None, None, None);
        assert_eq!(tiny.cost(&usage(1, 0, 0, 1, 0)), Money(1));
        // The nano-dollar per request is the ledger's unit, so a request's cost is off by at
        // most half a nano-dollar: a one-token request at $0.0003/M records 0, and a million
        // of them record nothing of their true $0.0003.
        assert_eq!(tiny.cost(&usage(1, 0, 0, 0, 0)), Money(0));
        let sum =
            (0..1_000_000).fold(Money::ZERO, |sum, _| sum.saturating_add(tiny.cost(&usage(1, 0, 0, 0, 0))));
        assert_eq!(sum, Money::ZERO);
        assert_eq!(tiny.cost(&usage(1_000_000, 0, 0, 0, 0)), Money(300_000));
        // Half up, at exactly half.
        assert_eq!(usd(0.0005, 0.0, None, None, None).cost(&usage(1, 0, 0, 0, 0)), Money(1));
        assert_eq!(usd(0.000_499_999, 0.0, None, None, None).cost(&usage(1, 0, 0, 0, 0)), Money(0));
        // Big requests stay exact: a billion output tokens at $600/M is $600,000.
        let pro = usd(150.0, 600.0, None, None, None);
        assert_eq!(pro.cost(&usage(0, 0, 0, 1_000_000_000, 0)), Money(600_000 * 1_000_000_000));
        let most = Price { output: u64::MAX, ..Price::FREE };
        assert_eq!(most.cost(&usage(0, 0, 0, u64::MAX, 0)), Money(i64::MAX));
    }

    #[test]
    fn overrides_take_usd_per_million_and_refuse_nonsense() {
        let parse = |yaml: &str| serde_yaml_ng::from_str::<PriceOverride>(yaml);
        let gpt_4o = parse("{input: 2.5, output: 10, cached_input: 1.25}").unwrap();
        assert_eq!(gpt_4o.to_price(), Ok(*PriceTable::shipped().lookup("openai", "gpt-4o").unwrap()));
        assert!(parse("{input: 1, output: 2, cache_read: 1}").is_err());
        assert!(parse("{input: 1}").is_err());

        let bad = |input: f64, cached: Option<f64>| {
            PriceOverride { input, output: 1.0, cached_input: cached, cache_write: None, reasoning: None }
                .to_price()
                .unwrap_err()
        };
        assert_eq!(bad(-1.0, None), "`input`: -1 USD per million tokens is negative");
        assert_eq!(
            bad(1.0, Some(f64::NAN)),
            "`cached_input` must be a number of USD per million tokens, not NaN"
        );
        assert!(bad(f64::INFINITY, None).contains("not inf"));
        assert!(bad(20_000.0, None).contains("over the limit of 10000"));
        assert!(bad(0.000_002_5, None).contains("not per token"));
        assert_eq!(usd(0.0, 0.0, None, None, None), Price::FREE);
    }

    #[test]
    fn presets_and_azure_fall_back_to_openai_prices() {
        let table = PriceTable::shipped();
        let openai = table.lookup("openai", "gpt-4o").unwrap();
        for provider in ["azure", "groq", "openrouter"] {
            assert_eq!(table.lookup(provider, "gpt-4o"), Some(openai), "{provider}");
        }
        for provider in ["ollama", "vllm", "lmstudio"] {
            assert_eq!(table.lookup(provider, "llama3.2"), Some(&Price::FREE), "{provider} is self-hosted");
        }
        assert_eq!(table.lookup("anthropic", "gpt-4o"), None);
        assert_eq!(table.lookup("mock", "gpt-4o"), None);
        // A preset's own row comes first.
        let groq = table.lookup("groq", "openai/gpt-oss-20b").unwrap();
        assert_eq!(*groq, usd(0.075, 0.3, Some(0.0375), None, None));
    }

    #[test]
    fn dates_are_stripped_and_undated_ids_find_their_latest_snapshot() {
        let table = PriceTable::shipped();
        let sonnet = table.lookup("anthropic", "claude-sonnet-4-5").unwrap();
        assert_eq!(table.lookup("anthropic", "claude-sonnet-4-5-20991231"), Some(sonnet));
        assert_eq!(table.lookup("openai", "gpt-4o-2099-01-01"), table.lookup("openai", "gpt-4o"));
        // A dated row of its own wins over the undated one ($5/M, not $2.50/M).
        assert_eq!(
            table.lookup("openai", "gpt-4o-2024-05-13").unwrap().input,
            5 * FEMTOS_PER_USD_PER_MILLION
        );

        let tsv = "# comment\nanthropic\tclaude-x-20250101\t1\t2\t\t\t\nanthropic\tclaude-x-20250601\t3\t4\t\t\t\n\
                   openai\tgpt-y-2024-01-01\t5\t6\t\t\t\n";
        let table = PriceTable::parse(tsv).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table.lookup("anthropic", "claude-x"), Some(&usd(3.0, 4.0, None, None, None)));
        assert_eq!(table.lookup("openai", "gpt-y").map(|p| p.input), Some(5 * FEMTOS_PER_USD_PER_MILLION));

        assert_eq!(undated("claude-sonnet-4-5-20250929"), Some("claude-sonnet-4-5"));
        assert_eq!(undated("gpt-4o-2024-08-06"), Some("gpt-4o"));
        for kept in
            ["gpt-4-0613", "mistral-large-2411", "model-20251399", "-20250101", "x-2024-13-01", "é-2024"]
        {
            assert_eq!(undated(kept), None, "{kept}");
        }
    }

    #[test]
    fn unknown_models_have_no_price() {
        let table = PriceTable::shipped();
        assert_eq!(table.lookup("openai", "no-such-model"), None);
        assert_eq!(table.lookup("no-such-provider", "gpt-4o"), None);
        assert_eq!(table.lookup("openai", ""), None);
        let parse = |yaml: &str| serde_yaml_ng::from_str::<UnknownPrice>(yaml).unwrap();
        assert_eq!(
            (parse("warn"), parse("zero"), parse("reject")),
            (UnknownPrice::Warn, UnknownPrice::Zero, UnknownPrice::Reject)
        );
        assert_eq!(UnknownPrice::default(), UnknownPrice::Warn);
    }

    #[test]
    fn malformed_tables_are_refused_by_line() {
        let err = |tsv: &str| PriceTable::parse(tsv).unwrap_err();
        assert_eq!(err("#\nopenai\tgpt\t1\t2\t\t\n"), "line 2: 6 columns, not 7");
        assert!(err("openai\tgpt\t1e-6\t2\t\t\t\n").contains("not a price"));
        assert!(err("openai\tgpt\t-1\t2\t\t\t\n").contains("not a price"));
        assert!(err("openai\tgpt\t1.\t2\t\t\t\n").contains("not a price"));
        assert!(err("openai\tgpt\t0.0000000001\t2\t\t\t\n").contains("nine decimals"));
        assert!(err("openai\tgpt\t10001\t2\t\t\t\n").contains("over the limit"));
        assert!(
            err("openai\tgpt\t1\t2\t\t\t\nopenai\tgpt\t1\t2\t\t\t\n")
                .contains("line 2: openai gpt is listed twice")
        );
        assert_eq!(parse_per_million("0.141953125"), Ok(141_953_125));
        assert_eq!(parse_per_million("10"), Ok(10 * FEMTOS_PER_USD_PER_MILLION));
    }
}
