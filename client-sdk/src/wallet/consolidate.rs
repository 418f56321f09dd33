//! Consolidation: many small outputs of one token merged into one (what OMG's users asked for as
//! "merge").
//!
//! Why: every output is a separate exit — a bond, a proof and a queue entry each (EXIT-1,
//! BOND-1) — and a payment spends at most [`MAX_INPUTS`] of them (TX-2). A wallet paid in many
//! small amounts can neither pay a large amount in one payment nor exit cheaply. Merging pays
//! the operator's fee once per merge payment, to this wallet only, so it changes no one else's
//! balance.
//!
//! How: a tree of merges. Each round merges groups of up to `max_inputs` outputs into one output
//! each (all of a round's payments are independent and submitted together), waits until each is
//! committed on L1, verifies the new outputs exactly as a sync does, and goes on with what it
//! has, until one output is left. Each round merges `⌊n / k⌋` full groups and leaves the rest
//! for the next (or merges all `n ≤ k` at once), which takes the fewest payments possible,
//! `⌈(n − 1) / (k − 1)⌉`: each payment of `m` inputs removes `m − 1` outputs, and all but the
//! last have `k`. The largest outputs go into the full groups, spread so their sums are even,
//! and the dust waits to be merged with their results: every merge must leave more than the fee.
//! The whole tree is simulated before anything is sent, so a consolidation the fees would eat
//! is refused up front.

use super::Wallet;
use crate::{error::SdkError, store::StoredOutput};
use alloy::primitives::{Address, B256, U256};
use plasma_spec::{MAX_INPUTS, Output, SignedTransaction, Transaction, UtxoPos};
use serde::{Serialize, Serializer};
use std::time::Duration;

/// How [`Wallet::consolidate_with`] merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsolidateOptions {
    /// Inputs per merge payment, 2 to [`MAX_INPUTS`] (more inputs, fewer payments and fees).
    pub max_inputs: usize,
    /// How long to wait for each round's payments to be committed on L1.
    pub timeout: Duration,
}

impl Default for ConsolidateOptions {
    fn default() -> Self {
        Self { max_inputs: MAX_INPUTS, timeout: Duration::from_secs(300) }
    }
}

/// One merge payment of a [`ConsolidateReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergePayment {
    /// The round it was sent in (from 1).
    pub round: usize,
    /// The payment.
    pub tx_hash: B256,
    /// The outputs it spent.
    #[serde(serialize_with = "decimals")]
    pub inputs: Vec<u128>,
    /// What they held together.
    #[serde(serialize_with = "decimal")]
    pub input_sum: U256,
    /// The child block it was committed in.
    pub blknum: u64,
    /// Its one output, verified against L1 and stored.
    #[serde(serialize_with = "decimal")]
    pub output: u128,
    /// That output's amount: `input_sum − fee`.
    #[serde(serialize_with = "decimal")]
    pub amount: U256,
}

/// What [`Wallet::consolidate`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsolidateReport {
    /// The token.
    pub token: Address,
    /// Spendable outputs before.
    pub outputs_before: usize,
    /// What they held.
    #[serde(serialize_with = "decimal")]
    pub value_before: U256,
    /// The merge payments, in the order sent.
    pub payments: Vec<MergePayment>,
    /// Rounds (each waits for the last one's commits).
    pub rounds: usize,
    /// Fees paid: the fee once per payment.
    #[serde(serialize_with = "decimal")]
    pub fees: U256,
    /// The output left.
    #[serde(serialize_with = "decimal")]
    pub output: u128,
    /// Its amount: `value_before − fees` when nothing else arrived meanwhile.
    #[serde(serialize_with = "decimal")]
    pub amount: U256,
}

fn decimal<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn decimals<S: Serializer>(v: &[u128], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

/// One round's merges of `coins` (position, amount): groups of at least two. With `n ≤ k`
/// coins, all of them; otherwise `⌊n / k⌋` full groups of the largest coins, dealt out in a
/// snake order so the groups' sums are even, the rest left for the next round.
fn round_groups(coins: &[(u128, U256)], k: usize) -> Vec<Vec<(u128, U256)>> {
    let mut sorted = coins.to_vec();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if sorted.len() < 2 {
        return Vec::new();
    }
    if sorted.len() <= k {
        return vec![sorted];
    }
    let groups = sorted.len() / k;
    let mut out = vec![Vec::with_capacity(k); groups];
    for (i, coin) in sorted.into_iter().take(groups * k).enumerate() {
        let (row, col) = (i / groups, i % groups);
        let g = if row % 2 == 0 { col } else { groups - 1 - col };
        out[g].push(coin);
    }
    out
}

/// The first merge of a round that would leave nothing after `fee`, as the refusal.
fn check_round(token: Address, groups: &[Vec<(u128, U256)>], fee: U256) -> Result<(), SdkError> {
    for g in groups {
        let sum = g.iter().fold(U256::ZERO, |a, c| a + c.1);
        if sum <= fee {
            return Err(SdkError::FeeExceedsValue { token, value: sum, fees: fee, payments: 1 });
        }
    }
    Ok(())
}

/// Simulates the whole tree: the payments and rounds it takes and the amount left, or the
/// refusal (the total, or one merge, eaten by the fees).
fn plan(
    token: Address,
    coins: &[(u128, U256)],
    fee: U256,
    k: usize,
) -> Result<(usize, usize, U256), SdkError> {
    if coins.len() < 2 {
        return Err(SdkError::NothingToConsolidate { token, outputs: coins.len() });
    }
    let total = coins.iter().fold(U256::ZERO, |a, c| a + c.1);
    let payments = (coins.len() - 1).div_ceil(k - 1);
    let fees = fee.saturating_mul(U256::from(payments));
    if total <= fees {
        return Err(SdkError::FeeExceedsValue { token, value: total, fees, payments });
    }
    let mut coins = coins.to_vec();
    let (mut rounds, mut sent) = (0, 0);
    // Merged outputs get positions no coin has (above every valid one, POS-2).
    let mut next = u128::MAX;
    while coins.len() > 1 {
        let groups = round_groups(&coins, k);
        check_round(token, &groups, fee)?;
        rounds += 1;
        for g in groups {
            coins.retain(|c| !g.contains(c));
            coins.push((next, g.iter().fold(U256::ZERO, |a, c| a + c.1) - fee));
            next -= 1;
            sent += 1;
        }
    }
    debug_assert_eq!(sent, payments);
    Ok((sent, rounds, coins[0].1))
}

impl Wallet {
    /// Merges every spendable output of `token` into one, paying `fee` per merge payment (see
    /// [`Wallet::consolidate_with`]).
    pub async fn consolidate(
        &self,
        token: Address,
        fee: U256,
    ) -> Result<ConsolidateReport, SdkError> {
        self.consolidate_with(token, fee, ConsolidateOptions::default()).await
    }

    /// Merges every spendable output of `token` into one through a tree of merge payments to
    /// this wallet (see the module's note), each round waiting until its payments are committed
    /// on L1 and their outputs verified (`proof+tx`) before the next. Re-checks the outputs
    /// first, as a send does (WALLET-1). Refuses before anything is sent when there is nothing
    /// to merge ([`SdkError::NothingToConsolidate`]: fewer than two spendable outputs) or the
    /// fees would eat the value or any one merge ([`SdkError::FeeExceedsValue`]). An error after
    /// some payments were sent (a commit not seen within `options.timeout`, the operator gone)
    /// loses nothing: each merge is an ordinary payment to this wallet, and consolidating again
    /// after a sync goes on from the outputs there are.
    pub async fn consolidate_with(
        &self,
        token: Address,
        fee: U256,
        options: ConsolidateOptions,
    ) -> Result<ConsolidateReport, SdkError> {
        let k = options.max_inputs.clamp(2, MAX_INPUTS);
        self.refresh().await?;
        let coins = self.coins(token)?;
        let (payments, rounds, amount) = plan(token, &coins, fee, k)?;
        tracing::info!(%token, outputs = coins.len(), payments, rounds, %amount, "consolidating");
        let mut report = ConsolidateReport {
            token,
            outputs_before: coins.len(),
            value_before: coins.iter().fold(U256::ZERO, |a, c| a + c.1),
            payments: Vec::new(),
            rounds: 0,
            fees: U256::ZERO,
            output: coins[0].0,
            amount: U256::ZERO,
        };
        // Outputs arriving meanwhile are merged too; the bound only stops a stream of them.
        for round in 1..=rounds + 8 {
            let coins = self.coins(token)?;
            if coins.len() < 2 {
                break;
            }
            let groups = round_groups(&coins, k);
            check_round(token, &groups, fee)?;
            let mut sent = Vec::new();
            for g in &groups {
                let inputs: Vec<UtxoPos> = g
                    .iter()
                    .map(|c| UtxoPos::from_u128(c.0).map_err(|e| SdkError::Store(e.to_string())))
                    .collect::<Result<_, _>>()?;
                let sum = g.iter().fold(U256::ZERO, |a, c| a + c.1);
                let tx = Transaction::payment(
                    &inputs,
                    vec![Output::new(self.address(), token, sum - fee)],
                    B256::ZERO,
                );
                let sig = self.signer.sign_tx(&self.domain, &tx);
                let signed = SignedTransaction::new(tx, vec![sig; inputs.len()]);
                let hash = self.submit(&signed).await?;
                tracing::info!(round, %hash, inputs = inputs.len(), %sum, "merge payment sent");
                sent.push((hash, signed.transaction, g.iter().map(|c| c.0).collect(), sum));
            }
            let mut blocks = Vec::new();
            for (hash, ..) in &sent {
                blocks.push(self.wait_for_commit(*hash, options.timeout).await?);
            }
            self.sync().await?;
            let stored = self.store.all()?;
            for ((hash, tx, inputs, sum), blknum) in sent.into_iter().zip(blocks) {
                let bytes = tx.encode();
                let out = stored
                    .iter()
                    .find(|o| o.tx_bytes.as_ref() == bytes.as_slice() && o.is_spendable())
                    .ok_or_else(|| {
                        SdkError::UnknownOutput(format!(
                            "the output of merge payment {hash} (block {blknum}): committed \
                             but not verified; sync and consolidate again"
                        ))
                    })?;
                report.fees += fee;
                report.payments.push(MergePayment {
                    round,
                    tx_hash: hash,
                    inputs,
                    input_sum: sum,
                    blknum,
                    output: out.utxo_pos,
                    amount: out.amount,
                });
            }
            report.rounds = round;
        }
        let left = self.coins(token)?;
        if let [(pos, amount)] = left.as_slice() {
            (report.output, report.amount) = (*pos, *amount);
        } else {
            tracing::warn!(outputs = left.len(), "consolidation left more than one output");
            if let Some(last) = report.payments.last() {
                (report.output, report.amount) = (last.output, last.amount);
            }
        }
        tracing::info!(%token, payments = report.payments.len(), fees = %report.fees, output = report.output, amount = %report.amount, "consolidated");
        Ok(report)
    }

    /// The spendable outputs of `token` as (position, amount).
    fn coins(&self, token: Address) -> Result<Vec<(u128, U256)>, SdkError> {
        Ok(self.spendable(token)?.iter().map(|o: &StoredOutput| (o.utxo_pos, o.amount)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coins(amounts: &[u64]) -> Vec<(u128, U256)> {
        amounts
            .iter()
            .enumerate()
            .map(|(i, a)| ((i as u128 + 1) * 1_000_000_000, U256::from(*a)))
            .collect()
    }

    #[test]
    fn a_tree_of_merges_takes_the_fewest_payments() {
        for n in 2..=40usize {
            let c = coins(&vec![100; n]);
            let (payments, rounds, left) = plan(Address::ZERO, &c, U256::from(1), 5).unwrap();
            assert_eq!(payments, (n - 1).div_ceil(4), "n = {n}");
            assert_eq!(left, U256::from(100 * n - payments), "n = {n}");
            assert!(rounds <= n.ilog(5) as usize + 2, "n = {n}: {rounds} rounds");
        }
        // Twelve: two full merges, then the two results with the two left over.
        assert_eq!(
            plan(Address::ZERO, &coins(&[7; 12]), U256::ZERO, 5).unwrap(),
            (3, 2, U256::from(84))
        );
    }

    #[test]
    fn dust_waits_for_the_large_outputs_and_the_sums_are_even() {
        let c = coins(&[50, 40, 30, 20, 10, 9, 8, 7, 6, 5, 1, 1]);
        let groups = round_groups(&c, 5);
        assert_eq!(groups.len(), 2);
        let sums: Vec<U256> =
            groups.iter().map(|g| g.iter().fold(U256::ZERO, |a, c| a + c.1)).collect();
        // Snake order: 50 20 10 7 6 | 40 30 9 8 5 — the two 1s wait.
        assert_eq!(sums, vec![U256::from(93), U256::from(92)]);
        assert!(groups.iter().flatten().all(|c| c.1 > U256::from(1)));
    }

    #[test]
    fn nothing_to_merge_and_fees_that_eat_the_value_are_refused() {
        assert!(matches!(
            plan(Address::ZERO, &coins(&[5]), U256::ZERO, 5),
            Err(SdkError::NothingToConsolidate { outputs: 1, .. })
        ));
        assert!(matches!(
            plan(Address::ZERO, &coins(&[]), U256::ZERO, 5),
            Err(SdkError::NothingToConsolidate { outputs: 0, .. })
        ));
        // 3 + 3 = 6 = the fee: nothing left.
        match plan(Address::ZERO, &coins(&[3, 3]), U256::from(6), 5) {
            Err(SdkError::FeeExceedsValue { value, fees, payments: 1, .. }) => {
                assert_eq!((value, fees), (U256::from(6), U256::from(6)));
            }
            other => panic!("{other:?}"),
        }
        // Ten coins of 2 with a fee of 10: 20 in all against 3 payments' 30 of fees.
        assert!(matches!(
            plan(Address::ZERO, &coins(&[2; 10]), U256::from(10), 5),
            Err(SdkError::FeeExceedsValue { payments: 3, .. })
        ));
        // Enough in total, but one merge of five 1s would leave nothing after a fee of 5.
        let mut c = coins(&[1; 10]);
        c[0].1 = U256::from(1000);
        match plan(Address::ZERO, &c, U256::from(5), 5) {
            Err(SdkError::FeeExceedsValue { value, payments: 1, .. }) => {
                assert_eq!(value, U256::from(5));
            }
            other => panic!("{other:?}"),
        }
        // Dust below the fee is fine when merged with more.
        assert_eq!(
            plan(Address::ZERO, &coins(&[100, 1, 1]), U256::from(2), 5).unwrap(),
            (1, 1, U256::from(100))
        );
    }
}
