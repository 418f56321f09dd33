//! Consolidation against a real anvil, the real contracts and the real operator: twelve small
//! outputs (one below the fee) merged into one through a tree of merge payments, each committed
//! and verified; the one output left is worth the exact sum minus the fees, proven on L1 by
//! exiting it and withdrawing to the wei. Refusals send nothing.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, U256};
use plasma_contracts::DeployConfig;
use plasma_sdk::{OutputStatus, SdkError};
use plasma_testkit::{PERIOD, advance, env, operator, wallet};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_outputs_become_one_worth_the_sum_minus_the_fees() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let fee = U256::from(1_000_000_000_000u64); // 1e12 wei
    // Eleven outputs of 1e15 · i wei and one of half the fee (dust a merge alone cannot pay for).
    let mut amounts: Vec<U256> =
        (1..=11u64).map(|i| U256::from(i * 1_000_000_000_000_000)).collect();
    amounts.push(fee / U256::from(2));
    let total = amounts.iter().fold(U256::ZERO, |a, v| a + *v);
    for a in &amounts {
        let pos = alice.deposit_eth(*a).await.unwrap();
        alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    }
    assert_eq!(alice.spendable(Address::ZERO).unwrap().len(), 12);
    assert_eq!(alice.balance(Address::ZERO).unwrap(), total);

    // Refusals, before anything is sent.
    let b = bob.deposit_eth(U256::from(5)).await.unwrap();
    bob.wait_for_output(b, Duration::from_secs(20)).await.unwrap();
    assert!(matches!(
        bob.consolidate(Address::ZERO, U256::ZERO).await,
        Err(SdkError::NothingToConsolidate { outputs: 1, .. })
    ));
    // Three merge payments are needed; fees of just over a third of the total each eat it all.
    let greedy = total / U256::from(3) + U256::from(1);
    match alice.consolidate(Address::ZERO, greedy).await {
        Err(SdkError::FeeExceedsValue { value, fees, payments: 3, .. }) => {
            assert_eq!((value, fees), (total, greedy * U256::from(3)));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        alice.outputs().unwrap().iter().all(|o| o.spent_by.is_none()),
        "a refused consolidation sent nothing"
    );

    let report = alice.consolidate(Address::ZERO, fee).await.unwrap();
    // ⌈(12 − 1) / 4⌉ = 3 payments: two merges of five, then the two results with the two left.
    assert_eq!(report.outputs_before, 12);
    assert_eq!(report.value_before, total);
    assert_eq!(report.payments.len(), 3, "{report:#?}");
    assert_eq!(report.rounds, 2);
    assert_eq!(report.fees, fee * U256::from(3));
    assert!(report.payments.iter().all(|p| p.inputs.len() <= 5 && p.amount == p.input_sum - fee));
    let round_one: Vec<u128> =
        report.payments.iter().filter(|p| p.round == 1).map(|p| p.output).collect();
    let last = report.payments.last().unwrap();
    assert_eq!(last.round, 2);
    assert!(round_one.iter().all(|o| last.inputs.contains(o)), "round 2 merges round 1's outputs");
    assert_eq!(last.inputs.len(), 4);
    // The dust went into the last merge, with the large results.
    let dust =
        alice.outputs().unwrap().into_iter().find(|o| o.amount == fee / U256::from(2)).unwrap();
    assert!(last.inputs.contains(&dust.utxo_pos));

    let expected = total - fee * U256::from(3);
    assert_eq!(report.amount, expected);
    let left = alice.spendable(Address::ZERO).unwrap();
    assert_eq!(left.len(), 1, "one output left");
    assert_eq!((left[0].utxo_pos, left[0].amount), (report.output, expected));
    assert_eq!(alice.balance(Address::ZERO).unwrap(), expected);
    assert!(
        alice
            .outputs()
            .unwrap()
            .iter()
            .filter(|o| o.utxo_pos != report.output)
            .all(|o| o.status == OutputStatus::Spent),
        "every other output is spent"
    );
    assert!(matches!(
        alice.consolidate(Address::ZERO, fee).await,
        Err(SdkError::NothingToConsolidate { outputs: 1, .. })
    ));

    // On L1: the one output exits and pays exactly that (alice processes: her bounty back).
    alice.start_exits(&[report.output]).await.unwrap();
    advance(&env.provider, 3 * PERIOD).await;
    alice.process_exits(Address::ZERO, 10).await.unwrap();
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), expected + bond);
    node.stop().await;
}
