//! The watchtower under attack on the real binaries (Safety II): guards it must refuse, guards it
//! must drop, and a tower too poor to exit everyone (WATCH-13). See docs/e2e.md.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use plasma_contracts::{BatchExitGame, PlasmaFramework, StandardExitGame};
use plasma_e2e::{ByzantineOperator, Devnet};
use serde_json::{Value, json};
use std::time::Duration;

fn milli(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64.pow(15))
}

async fn post_guard(net: &Devnet, owner: usize, deadline: u64, nonce: U256) -> (u16, Value) {
    let key =
        plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[owner].to_bytes()))
            .unwrap();
    let domain = plasma_spec::SigningDomain::new(net.anvil.chain_id(), net.deployment.framework);
    let auth = plasma_spec::ExitAuthorization {
        exitor: net.watcher,
        deadline: U256::from(deadline),
        nonce,
    };
    let sig = key.sign_digest(domain.exit_authorization_digest(&auth));
    let body = json!({"owner": key.address(), "deadline": auth.deadline, "nonce": nonce, "signature": sig});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/guards", net.watcher_url))
        .timeout(Duration::from_secs(10))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// What the operator serves to exit an output (OP-6).
struct ExitData {
    tx_bytes: alloy::primitives::Bytes,
    proof: alloy::primitives::Bytes,
    timestamp: u64,
}

impl ExitData {
    async fn of(net: &Devnet, pos: u128) -> Self {
        let data: Value = reqwest::get(format!("{}/v1/utxos/{pos}/exit-data", net.operator_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let field = |k: &str| -> alloy::primitives::Bytes {
            hex::decode(data[k].as_str().unwrap().trim_start_matches("0x")).unwrap().into()
        };
        Self {
            tx_bytes: field("txBytes"),
            proof: field("inclusionProof"),
            timestamp: data["blockTimestamp"].as_u64().unwrap(),
        }
    }
}

async fn l1_now(net: &Devnet) -> u64 {
    net.provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

/// Safety II, 4: an expired authorization, one whose nonce is not the owner's on L1, and an older
/// one replacing a newer one are refused with typed errors; a revoked one is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_that_could_not_exit_are_refused_and_revoked_ones_dropped() {
    let net = Devnet::start().await.unwrap();
    let now = l1_now(&net).await;

    let (status, body) = post_guard(&net, 1, now - 1, U256::ZERO).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("AuthorizationExpired")),
        "{body}"
    );
    let (status, body) = post_guard(&net, 1, now + 10_000, U256::from(1)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("AuthorizationNonceStale")),
        "{body}"
    );

    // The newer (later deadline) authorization stays; an older one cannot replace it.
    let (status, body) = post_guard(&net, 1, now + 20_000, U256::ZERO).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_guard(&net, 1, now + 10_000, U256::ZERO).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("AuthorizationOlder")),
        "{body}"
    );
    let (s, _) = net.watcher_state().await.unwrap();
    assert_eq!(s["status"]["guarded"], 1);

    // alice revokes on L1: the watcher drops her guard and refuses the old one from then on.
    let game = StandardExitGame::new(net.deployment.standard_exit_game, net.provider_for(1));
    let r = game.revokeAuthorizations().send().await.unwrap().get_receipt().await.unwrap();
    assert!(r.status());
    net.wait_watcher("guard dropped", |s, e| {
        s["status"]["guarded"] == 0
            && e["events"]
                .as_array()
                .is_some_and(|ev| ev.iter().any(|x| x["kind"] == "guardDropped"))
    })
    .await
    .unwrap();
    let (status, body) = post_guard(&net, 1, now + 20_000, U256::ZERO).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("AuthorizationNonceStale")),
        "{body}"
    );
    let (status, body) = post_guard(&net, 1, now + 20_000, U256::from(1)).await;
    assert_eq!(status, 200, "the current nonce is accepted: {body}");
}

/// Safety II, 2: a tower with 0.1 ETH guarding 1 ETH, 30 × 0.01 ETH and 5 dust outputs when a
/// block is withheld: it exits the 1 ETH output first, as many of the others as its balance pays
/// for, never the dust, and says so; the rich owner is paid in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_underfunded_tower_exits_the_most_valuable_outputs_it_can_pay_for() {
    let net = Devnet::start().await.unwrap();
    let rich = net.wallet(1).await.unwrap();
    let many = net.wallet(2).await.unwrap();
    let dusty = net.wallet(3).await.unwrap();
    let rich_pos = rich.deposit_eth(milli(1000)).await.unwrap();
    rich.wait_for_output(rich_pos, Duration::from_secs(30)).await.unwrap();
    let mut last = 0;
    for _ in 0..30 {
        last = many.deposit_eth(milli(10)).await.unwrap();
    }
    many.wait_for_output(last, Duration::from_secs(30)).await.unwrap();
    for _ in 0..5 {
        last = dusty.deposit_eth(milli(1)).await.unwrap();
    }
    dusty.wait_for_output(last, Duration::from_secs(30)).await.unwrap();
    for w in [&rich, &many, &dusty] {
        net.guard(w).await.unwrap();
    }
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(36))
        .await
        .unwrap();

    // The tower's account keeps 0.1 ETH (sent away while it is idle: nothing to act on yet).
    let tower = net.provider_for(9);
    let balance = net.provider.get_balance(net.watcher).await.unwrap();
    let price = 10_000_000_000u128;
    let fee = U256::from(21_000u64) * U256::from(price);
    let tx = TransactionRequest::default()
        .with_to(Address::repeat_byte(0xee))
        .with_value(balance - milli(100) - fee)
        .with_gas_limit(21_000)
        .with_gas_price(price);
    assert!(tower.send_transaction(tx).await.unwrap().get_receipt().await.unwrap().status());
    assert_eq!(net.provider.get_balance(net.watcher).await.unwrap(), milli(100));

    // The operator withholds a block (a theft of the rich owner's deposit).
    let mut net = net;
    net.kill_operator();
    let thief = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
        .unwrap();
    let theft = ByzantineOperator::steal(rich_pos, milli(1000), &thief, rich.domain()).unwrap();
    net.byzantine_operator().commit_withheld(vec![theft]).await.unwrap();

    net.wait_watcher("mass exit and budget events", |_, e| {
        let ev = e["events"].as_array().cloned().unwrap_or_default();
        ev.iter().any(|x| x["kind"] == "batchMassExit")
            && ev.iter().any(|x| x["kind"] == "dustSkipped")
            && ev.iter().any(|x| x["kind"] == "underfunded")
    })
    .await
    .unwrap();
    let (_, events) = net.watcher_state().await.unwrap();
    let ev = events["events"].as_array().unwrap();
    let dust = ev.iter().find(|x| x["kind"] == "dustSkipped").unwrap();
    assert_eq!(dust["outputs"], 5, "{dust}");
    let short = ev.iter().find(|x| x["kind"] == "underfunded").unwrap();
    assert_eq!(short["outputs"], 31, "{short}");
    let unaffordable = short["unaffordable"].as_u64().unwrap();
    assert!(unaffordable > 0 && unaffordable < 31, "some, not all, are beyond 0.1 ETH: {short}");

    // The 1 ETH output was claimed by the first mass exit (a batch exit, EXIT-12).
    let first = ev.iter().find(|x| x["kind"] == "batchMassExit").unwrap();
    let receipt = net
        .provider
        .get_transaction_receipt(first["l1_tx"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let claimed_in = |receipt: &alloy::rpc::types::TransactionReceipt| -> Vec<u128> {
        receipt
            .inner
            .logs()
            .iter()
            .filter_map(|l| l.log_decode::<BatchExitGame::BatchExitGroup>().ok())
            .flat_map(|g| plasma_spec::batch_exit::decode_claims(&g.inner.data.claims).unwrap())
            .map(|(pos, _)| pos.to_u128())
            .collect()
    };
    assert!(claimed_in(&receipt).contains(&rich_pos), "the richest output first");
    // No dust output was ever claimed or exited.
    let batch = BatchExitGame::new(net.deployment.batch_exit_game, net.provider.clone());
    let mut claimed = Vec::new();
    for (g, _) in batch.BatchExitGroup_filter().from_block(0).query().await.unwrap() {
        claimed.extend(
            plasma_spec::batch_exit::decode_claims(&g.claims)
                .unwrap()
                .iter()
                .map(|c| c.0.to_u128()),
        );
    }
    let game = StandardExitGame::new(net.deployment.standard_exit_game, net.provider.clone());
    for pos in dusty.spendable(Address::ZERO).unwrap().iter().map(|o| o.utxo_pos) {
        assert!(!claimed.contains(&pos), "dust {pos} claimed");
        assert_eq!(game.exits(U256::from(pos)).call().await.unwrap().status, 0);
    }

    net.process_all_exits(Address::ZERO).await.unwrap();
    assert_eq!(rich.withdrawable(Address::ZERO).await.unwrap(), milli(1000));
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    assert!(framework.totalCredited(Address::ZERO).call().await.unwrap() >= milli(1000));
}

/// Safety II, 6 (WATCH-4): a guarded owner hands the tower a payment, then standard-exits the
/// input it spends; the tower challenges with the handed-in spend though it was never included,
/// or the payment's recipient would lose what the in-flight exit owes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_of_an_input_of_a_handed_in_payment_is_challenged() {
    let net = Devnet::start().await.unwrap();
    let alice = net.wallet(1).await.unwrap();
    let pos = alice.deposit_eth(milli(1000)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(30)).await.unwrap();
    net.guard(&alice).await.unwrap();
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(1))
        .await
        .unwrap();

    // The payment goes to the tower only (never to the operator).
    let key = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[1].to_bytes()))
        .unwrap();
    let input = plasma_spec::UtxoPos::from_u128(pos).unwrap();
    let tx = plasma_spec::Transaction::payment(
        &[input],
        vec![plasma_spec::Output::new(Address::repeat_byte(0xb0), Address::ZERO, milli(1000))],
        B256::ZERO,
    );
    let signed =
        plasma_spec::SignedTransaction::new(tx.clone(), vec![key.sign_tx(alice.domain(), &tx)]);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/guards/in-flight", net.watcher_url))
        .timeout(Duration::from_secs(10))
        .json(&json!({"tx": format!("0x{}", hex::encode(signed.encode()))}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // Then alice exits the input she gave away, from the operator's exit data.
    let data = ExitData::of(&net, pos).await;
    let game = StandardExitGame::new(net.deployment.standard_exit_game, net.provider_for(1));
    let bond = game.bondSize().call().await.unwrap();
    let args = StandardExitGame::StartArgs {
        utxoPos: U256::from(pos),
        txBytes: data.tx_bytes.clone(),
        inclusionProof: data.proof.clone(),
        blockTimestamp: data.timestamp,
    };
    let sent = game.startStandardExit(args).value(bond).send().await.unwrap();
    assert!(sent.get_receipt().await.unwrap().status());

    let shown = input.to_string();
    net.wait_watcher("challenge", |_, e| {
        e["events"].as_array().is_some_and(|ev| {
            ev.iter().any(|x| x["kind"] == "challenged" && x["utxo_pos"].as_str() == Some(&shown))
        })
    })
    .await
    .unwrap();
    assert_ne!(game.exits(U256::from(pos)).call().await.unwrap().status, 1, "no longer active");
}

/// Issue 12, 3: when someone other than the tower (here the payment's recipient, a party) starts
/// the in-flight exit of a guarded owner's payment, the tower tells that owner to piggyback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_owners_hear_of_in_flight_exits_others_start() {
    let net = Devnet::start().await.unwrap();
    let alice = net.wallet(1).await.unwrap();
    let pos = alice.deposit_eth(milli(1000)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(30)).await.unwrap();
    net.guard(&alice).await.unwrap();
    let key = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[1].to_bytes()))
        .unwrap();
    let bob = net.anvil.addresses()[2];
    let tx = plasma_spec::Transaction::payment(
        &[plasma_spec::UtxoPos::from_u128(pos).unwrap()],
        vec![plasma_spec::Output::new(bob, Address::ZERO, milli(1000))],
        B256::ZERO,
    );
    let sig = key.sign_tx(alice.domain(), &tx);
    let data = ExitData::of(&net, pos).await;
    let game = plasma_contracts::InFlightExitGame::new(
        net.deployment.in_flight_exit_game,
        net.provider_for(2),
    );
    let bond = game.inFlightExitBond().call().await.unwrap();
    let args = plasma_contracts::InFlightExitGame::StartArgs {
        inFlightTx: tx.encode().into(),
        inputTxs: vec![data.tx_bytes.clone()],
        inputUtxoPos: vec![U256::from(pos)],
        inputProofs: vec![data.proof.clone()],
        inputBlockTimestamps: vec![data.timestamp],
        signatures: vec![sig],
    };
    let sent = game.startInFlightExit(args).value(bond).send().await.unwrap();
    assert!(sent.get_receipt().await.unwrap().status(), "bob, the recipient, may start it");

    let alice_address = format!("{:#x}", alice.address());
    net.wait_watcher("owners told", |_, e| {
        e["events"].as_array().is_some_and(|ev| {
            ev.iter().any(|x| {
                x["kind"] == "inFlightExitOfGuardedPayment"
                    && x["owners"].as_array().is_some_and(|o| {
                        o.iter().any(|a| {
                            a.as_str().map(str::to_lowercase) == Some(alice_address.clone())
                        })
                    })
            })
        })
    })
    .await
    .unwrap();
}

/// Issue 12, 6 (LEDGER-7): an L1 reorganisation swaps two deposits the watcher already applied;
/// the watcher calls the chain unsafe, naming the rule, instead of crediting on nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_swapped_by_a_reorg_make_the_chain_unsafe() {
    let net = Devnet::start().await.unwrap();
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let deposit = |i: usize, amount: U256| {
        let owner = net.anvil.addresses()[i];
        let tx = plasma_spec::Transaction::deposit(owner, Address::ZERO, amount).encode();
        // A fixed gas limit: replayed in the other order, an estimate could fall short.
        let framework = PlasmaFramework::new(net.deployment.framework, net.provider_for(i));
        async move {
            let call = framework.depositEth(tx.into()).value(amount).gas(300_000);
            call.send().await.unwrap().get_receipt().await.unwrap()
        }
    };
    let a = deposit(1, milli(1000)).await;
    let b = deposit(2, milli(2000)).await;
    net.wait_watcher("both applied", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(2))
        .await
        .unwrap();
    let raw_a = net.raw_transaction(a.transaction_hash).await.unwrap();
    let raw_b = net.raw_transaction(b.transaction_hash).await.unwrap();
    let depth = net.provider.get_block_number().await.unwrap() - a.block_number.unwrap() + 1;
    net.provider
        .raw_request::<_, Value>("anvil_reorg".into(), (depth, json!([[raw_b, 0], [raw_a, 1]])))
        .await
        .unwrap();
    net.mine(3).await.unwrap();
    let owners: Vec<Address> = framework
        .DepositCreated_filter()
        .from_block(0)
        .query()
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.owner)
        .collect();
    assert_eq!(owners, vec![net.anvil.addresses()[2], net.anvil.addresses()[1]], "swapped");

    net.wait_watcher("LEDGER-7", |s, e| {
        s["status"]["safe"] == false
            && e["events"].as_array().is_some_and(|ev| {
                ev.iter().any(|x| {
                    x["kind"] == "invalidBlock"
                        && x["reason"].as_str().is_some_and(|r| r.contains("LEDGER-7"))
                })
            })
    })
    .await
    .unwrap();
}
