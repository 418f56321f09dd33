//! What a watchtower can afford to exit (spec: WATCH-13). Pure: no I/O.
//!
//! A mass exit costs the tower a bond per output and the gas of its transactions, paid up front
//! from its own balance. A tower that tries more than it can pay sends nothing at all (a node
//! refuses a transaction whose value and gas exceed the balance), so it must choose: the most
//! valuable outputs first, in batches it can pay for in full, and never outputs worth less than
//! what exiting them costs.

use alloy::primitives::U256;

/// What one exit and one transaction cost the tower, at the current gas price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCosts {
    /// The standard exit bond (`bondSize()`), locked per output.
    pub bond: U256,
    /// Gas price the tower would pay, bumps included (wei per gas).
    pub gas_price: u128,
    /// Gas of one batched transaction before its outputs.
    pub gas_per_batch: u64,
    /// Gas per output in a batch.
    pub gas_per_output: u64,
}

impl ExitCosts {
    /// Up-front cost (value and gas limit) of a batch of `n` outputs.
    pub fn batch(&self, n: usize) -> U256 {
        let gas = self.gas_per_batch + self.gas_per_output * n as u64;
        self.bond * U256::from(n) + U256::from(gas) * U256::from(self.gas_price)
    }

    /// Below this amount an output costs more to exit than it is worth: its gas, and the half of
    /// the bond that a settled exit pays as processing bounty (BOND-1). The tower skips such dust.
    pub fn dust_below(&self) -> U256 {
        U256::from(self.gas_per_output) * U256::from(self.gas_price) + self.bond / U256::from(2)
    }
}

/// What exiting `n` outputs costs up front in batches of at most `max_batch` (bonds and gas):
/// the balance a tower needs to exit them all at once.
pub fn cost_of(costs: &ExitCosts, n: usize, max_batch: usize) -> U256 {
    let max_batch = max_batch.max(1);
    let full = n / max_batch;
    let rest = n % max_batch;
    let mut total = costs.batch(max_batch) * U256::from(full);
    if rest > 0 {
        total += costs.batch(rest);
    }
    total
}

/// Which outputs to exit now, and which not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<T> {
    /// Batches to send, richest outputs first; each is paid in full by the balance.
    pub batches: Vec<Vec<T>>,
    /// Outputs worth less than their exit (never exited by the tower).
    pub dust: Vec<T>,
    /// Outputs worth exiting that the balance cannot pay for.
    pub unaffordable: Vec<T>,
}

/// Plans a mass exit of `outputs` (each with its amount) with `balance`, in batches of at most
/// `max_batch`: the most valuable first, dust dropped, and only batches the balance pays in full.
/// The first batch shrinks to what the balance affords rather than failing whole.
pub fn plan<T>(
    mut outputs: Vec<(U256, T)>,
    balance: U256,
    costs: &ExitCosts,
    max_batch: usize,
) -> Plan<T> {
    let dust_below = costs.dust_below();
    // Stable: equal amounts keep their given order (older positions first).
    outputs.sort_by_key(|o| std::cmp::Reverse(o.0));
    let mut dust = Vec::new();
    let mut worth = Vec::new();
    for (amount, item) in outputs {
        if amount < dust_below {
            dust.push(item);
        } else {
            worth.push(item);
        }
    }
    let mut left = balance;
    let mut batches = Vec::new();
    let mut rest = worth.into_iter().peekable();
    while rest.peek().is_some() {
        let mut n = max_batch.max(1);
        while n > 0 && costs.batch(n) > left {
            n -= 1;
        }
        if n == 0 {
            break;
        }
        let batch: Vec<T> = rest.by_ref().take(n).collect();
        left -= costs.batch(batch.len());
        batches.push(batch);
    }
    Plan { batches, dust, unaffordable: rest.collect() }
}

/// How many owners a tower with `balance` may guard: at least one exit of each must be
/// affordable (WATCH-13). Zero when it cannot pay for even one.
pub fn guard_capacity(balance: U256, costs: &ExitCosts) -> u64 {
    let one = costs.batch(1);
    if one.is_zero() {
        return u64::MAX;
    }
    (balance / one).try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs() -> ExitCosts {
        // bond 0.01 ETH, 1 gwei, 600k + 200k per output (the watcher's limits).
        ExitCosts {
            bond: U256::from(10u64.pow(16)),
            gas_price: 1_000_000_000,
            gas_per_batch: 600_000,
            gas_per_output: 200_000,
        }
    }

    fn eth(milli: u64) -> U256 {
        U256::from(milli) * U256::from(10u64.pow(15))
    }

    #[test]
    fn the_reproduced_underfunded_tower_still_exits_the_rich_owner_first() {
        // 30 dust outputs of 0.001 ETH and one of 1 ETH; the tower holds 0.1 ETH.
        let mut outputs: Vec<(U256, u32)> = (0..30).map(|i| (eth(1), i)).collect();
        outputs.push((eth(1000), 99));
        let p = plan(outputs, eth(100), &costs(), 50);
        assert_eq!(p.batches, vec![vec![99]], "the 1 ETH output, alone, in an affordable batch");
        assert_eq!(p.dust.len(), 30, "0.001 ETH is less than 0.0002 ETH of gas + half a 0.01 bond");
        assert!(p.unaffordable.is_empty());
    }

    #[test]
    fn batches_shrink_to_the_balance_richest_first() {
        let outputs: Vec<(U256, u32)> = (1..=10).map(|i| (eth(100 * u64::from(i)), i)).collect();
        // One output costs 0.01 + 0.0008 = 0.0108 ETH; three outputs 0.0312; 0.035 ETH buys three.
        let p = plan(outputs, eth(35), &costs(), 50);
        assert_eq!(p.batches, vec![vec![10, 9, 8]]);
        assert_eq!(p.unaffordable, vec![7, 6, 5, 4, 3, 2, 1]);
        // Every batch is paid in full.
        let spent: U256 = p.batches.iter().map(|b| costs().batch(b.len())).sum();
        assert!(spent <= eth(35));
    }

    #[test]
    fn a_rich_tower_exits_everything_in_full_batches() {
        let outputs: Vec<(U256, u32)> = (0..120).map(|i| (eth(50), i)).collect();
        let p = plan(outputs, eth(1_000_000), &costs(), 50);
        let sizes: Vec<usize> = p.batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![50, 50, 20]);
        assert_eq!(p.batches[0][0], 0, "equal amounts keep their order");
        // What the dashboard and the balance alert call "needed": exactly what those batches cost.
        let spent: U256 = p.batches.iter().map(|b| costs().batch(b.len())).sum();
        assert_eq!(cost_of(&costs(), 120, 50), spent);
        assert_eq!(cost_of(&costs(), 0, 50), U256::ZERO);
    }

    #[test]
    fn capacity_is_one_affordable_exit_per_owner() {
        assert_eq!(guard_capacity(eth(100), &costs()), 9); // 0.1 / 0.0108
        assert_eq!(guard_capacity(eth(10), &costs()), 0);
    }
}
