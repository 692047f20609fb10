//! What a credit is worth: providers report their cost in micro-USD (`cost_micro_usd` on every
//! provider call); holds and captures are in whole credits. The conversion is a setting, one
//! number: micro-USD per credit (default 10,000, so 1 credit = $0.01 of provider cost).

/// Micro-USD per credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditPrice {
    micro_usd_per_credit: u64,
}

impl Default for CreditPrice {
    /// 10,000 micro-USD ($0.01) per credit.
    fn default() -> Self {
        Self {
            micro_usd_per_credit: 10_000,
        }
    }
}

impl CreditPrice {
    /// A price of `micro_usd_per_credit`.
    ///
    /// Errors: 0, naming the setting and the fix.
    pub fn new(micro_usd_per_credit: u64) -> Result<Self, String> {
        if micro_usd_per_credit == 0 {
            return Err(
                "credits.micro_usd_per_credit: 0; a credit must be worth at least 1 micro-USD"
                    .to_owned(),
            );
        }
        Ok(Self {
            micro_usd_per_credit,
        })
    }

    /// Micro-USD per credit.
    pub fn micro_usd_per_credit(&self) -> u64 {
        self.micro_usd_per_credit
    }

    /// The credits `micro_usd` of provider cost comes to, rounded up: a call that cost anything
    /// costs at least one credit, and the sum of a job's credits never falls below its cost.
    pub fn credits(&self, micro_usd: u64) -> i64 {
        let credits = micro_usd.div_ceil(self.micro_usd_per_credit);
        i64::try_from(credits).unwrap_or(i64::MAX)
    }

    /// What `credits` are worth, micro-USD.
    pub fn micro_usd(&self, credits: i64) -> u64 {
        u64::try_from(credits.max(0))
            .unwrap_or(0)
            .saturating_mul(self.micro_usd_per_credit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_round_up_to_whole_credits() {
        let price = CreditPrice::default();
        assert_eq!(price.credits(0), 0);
        assert_eq!(price.credits(1), 1, "anything paid costs a credit");
        assert_eq!(price.credits(10_000), 1);
        assert_eq!(price.credits(10_001), 2);
        // A minute of Kling clips by the shipped table: $3.50.
        assert_eq!(price.credits(3_500_000), 350);
        assert_eq!(price.micro_usd(350), 3_500_000);
        assert_eq!(price.micro_usd(-5), 0);
        assert!(CreditPrice::new(0)
            .unwrap_err()
            .contains("micro_usd_per_credit"));
        assert_eq!(CreditPrice::new(1).unwrap().credits(42), 42);
    }
}
