//! What provider calls cost: a price table per provider kind and model, shipped with list
//! prices (`prices.toml` beside this crate, each vendor's source named there) and overridable
//! in settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vendor::Usage;

/// One model's prices, micro-USD. Absent fields cost nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Price {
    /// Per 1,000 input (prompt) tokens.
    pub input_per_1k_tokens: u64,
    /// Per 1,000 output (completion) tokens.
    pub output_per_1k_tokens: u64,
    /// Per 1,000 characters of text spoken.
    pub per_1k_characters: u64,
    /// Per image.
    pub per_image: u64,
    /// Per second of generated video.
    pub per_video_second: u64,
}

impl Price {
    /// The cost of `usage`, micro-USD, rounded to the nearest.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let per_1k = |n: u64, price: u64| (n as u128 * price as u128 + 500) / 1000;
        (per_1k(usage.input_tokens, self.input_per_1k_tokens)
            + per_1k(usage.output_tokens, self.output_per_1k_tokens)
            + per_1k(usage.characters, self.per_1k_characters)) as u64
    }
}

/// Prices by `"<provider kind>/<model>"`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable(BTreeMap<String, Price>);

impl PriceTable {
    /// The shipped list prices (`prices.toml`).
    pub fn shipped() -> Self {
        let table: BTreeMap<String, Price> =
            toml::from_str(include_str!("../prices.toml")).expect("prices.toml parses");
        Self(table)
    }

    /// The shipped prices with `overrides` replacing or adding entries.
    pub fn with(mut self, overrides: &BTreeMap<String, Price>) -> Self {
        for (k, v) in overrides {
            self.0.insert(k.clone(), *v);
        }
        self
    }

    /// The price of `model` from provider kind `kind`, if listed.
    pub fn get(&self, kind: &str, model: &str) -> Option<Price> {
        self.0.get(&format!("{kind}/{model}")).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_prices_parse_and_compute() {
        let table = PriceTable::shipped();
        let mini = table.get("openai", "gpt-4o-mini").unwrap();
        // 2,000 prompt + 500 completion tokens: 2 × 150 + 0.5 × 600 = 600 micro-USD.
        let usage = Usage {
            input_tokens: 2000,
            output_tokens: 500,
            characters: 0,
        };
        assert_eq!(mini.cost(&usage), 600);
        let tts = table.get("openai-speech", "tts-1").unwrap();
        let spoken = Usage {
            characters: 1234,
            ..Usage::default()
        };
        assert_eq!(tts.cost(&spoken), 18_510);
        assert!(table.get("openai", "llama3.2").is_none());
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "openai/llama3.2".to_string(),
            Price {
                input_per_1k_tokens: 1,
                ..Price::default()
            },
        );
        assert_eq!(
            table
                .with(&overrides)
                .get("openai", "llama3.2")
                .unwrap()
                .input_per_1k_tokens,
            1
        );
    }
}
