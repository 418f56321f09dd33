//! LEDGER-9 on the real binaries: the reproduced vault drain (an owner exits two outputs, they
//! are processed and withdrawn, then the owner spends one again on the child chain) is refused by
//! the honest operator. See docs/e2e.md.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, U256};
use plasma_contracts::PlasmaFramework;
use plasma_e2e::Devnet;
use serde_json::{Value, json};
use std::time::Duration;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64.pow(18))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_exited_and_withdrawn_are_never_spendable_again() {
    let net = Devnet::start().await.unwrap();
    let alice = net.wallet(1).await.unwrap();
    let first = alice.deposit_eth(eth(1)).await.unwrap();
    let second = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(second, Duration::from_secs(30)).await.unwrap();
    alice.start_exits(&[first, second]).await.unwrap();
    net.process_all_exits(Address::ZERO).await.unwrap();
    assert!(alice.withdraw(Address::ZERO).await.unwrap() >= eth(3), "paid and withdrawn");
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    assert_eq!(framework.totalCredited(Address::ZERO).call().await.unwrap(), eth(3));

    // The operator no longer lists them...
    let http = reqwest::Client::new();
    let owner = alice.address();
    let listed: Value = http
        .get(format!("{}/v1/utxos?owner={owner}", net.operator_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["utxos"].as_array().map(Vec::len), Some(0), "{listed}");

    // ...and refuses a spend of either, signed by any EIP-712 signer of the owner's key.
    let key = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[1].to_bytes()))
        .unwrap();
    for (pos, amount) in [(first, eth(1)), (second, eth(2))] {
        let tx = plasma_spec::Transaction::payment(
            &[plasma_spec::UtxoPos::from_u128(pos).unwrap()],
            vec![plasma_spec::Output::new(Address::repeat_byte(0xb0), Address::ZERO, amount)],
            B256::ZERO,
        );
        let signed =
            plasma_spec::SignedTransaction::new(tx.clone(), vec![key.sign_tx(alice.domain(), &tx)]);
        let r = http
            .post(format!("{}/v1/transactions", net.operator_url))
            .json(&json!({"tx": format!("0x{}", hex::encode(signed.encode()))}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("OutputExiting")),
            "{body}"
        );
    }
    // Nothing more left the vault.
    assert_eq!(framework.totalCredited(Address::ZERO).call().await.unwrap(), eth(3));
    let (status, _) = net.watcher_state().await.unwrap();
    assert_eq!(status["status"]["safe"], true, "an honest chain stays safe");
}
