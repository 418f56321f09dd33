//! OP-7 / LEDGER-9 against a real anvil and the real contracts: once an output starts exiting on
//! L1 the operator refuses to spend it, drops pending spends of it, and stops listing it — and it
//! stays that way after the exit is processed and withdrawn (the reproduced vault drain).

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
};
use plasma_contracts::{PlasmaFramework, StandardExitGame, devnet::LocalChain};
use plasma_operator::{Config, Node};
use plasma_spec::{Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos};
use serde_json::Value;
use std::time::Duration;

mod common;
use common::Api;

const PERIOD: u64 = 60;

struct Env {
    chain: LocalChain,
    alice_l1: DynProvider,
    alice: Signer,
    domain: SigningDomain,
    node: Node,
    api: Api,
    _dir: tempfile::TempDir,
}

async fn env(block_interval_ms: u64) -> Env {
    let chain = LocalChain::start(PERIOD).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.data_dir = dir.path().into();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_url = chain.anvil.endpoint();
    c.l1.framework = chain.deployment.framework;
    c.l1.private_key = Some(chain.key_hex(0));
    c.l1.poll_interval_ms = 50;
    c.l1.deposit_confirmations = 1;
    c.l1.commit_confirmations = 1;
    c.block.interval_ms = block_interval_ms;
    let node = Node::start(c).await.unwrap();
    let alice = Signer::from_bytes(&B256::from_slice(&chain.anvil.keys()[1].to_bytes())).unwrap();
    let domain = SigningDomain::new(chain.anvil.chain_id(), chain.deployment.framework);
    Env {
        alice_l1: chain.provider_for(1),
        api: Api::new(&node),
        chain,
        alice,
        domain,
        node,
        _dir: dir,
    }
}

impl Env {
    async fn get(&self, path: &str) -> Value {
        self.api.get(path).await.1
    }

    async fn submit(&self, tx: &SignedTransaction) -> (u16, Value) {
        self.api.submit(tx).await
    }

    async fn wait_for(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.api.wait_for(path, check).await
    }

    async fn deposit(&self, amount: U256) -> UtxoPos {
        let pos = common::deposit_eth(
            &self.alice_l1,
            self.chain.deployment.framework,
            self.alice.address(),
            amount,
        )
        .await;
        let owner = self.alice.address();
        self.wait_for(&format!("/v1/utxos?owner={owner}"), |v| listed(v, pos)).await;
        pos
    }

    /// Starts alice's standard exit of `pos` from the operator's exit data; returns the L1 block.
    async fn start_exit(&self, pos: UtxoPos) -> u64 {
        let data = self.get(&format!("/v1/utxos/{}/exit-data", pos.to_u128())).await;
        let hex_field = |k: &str| {
            Bytes::from(hex::decode(data[k].as_str().unwrap().trim_start_matches("0x")).unwrap())
        };
        let args = StandardExitGame::StartArgs {
            utxoPos: pos.to_u256(),
            txBytes: hex_field("txBytes"),
            inclusionProof: hex_field("inclusionProof"),
            blockTimestamp: data["blockTimestamp"].as_u64().unwrap(),
        };
        let game =
            StandardExitGame::new(self.chain.deployment.standard_exit_game, self.alice_l1.clone());
        let bond = game.bondSize().call().await.unwrap();
        let receipt = game
            .startStandardExit(args)
            .value(bond)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "the exit started");
        receipt.block_number.unwrap()
    }

    /// Waits until the operator has applied L1's exit-game events up to `l1_block`.
    async fn exits_read_up_to(&self, l1_block: u64) {
        self.wait_for("/v1/status", |v| v["chain"]["exitCursor"].as_u64() >= Some(l1_block)).await;
    }

    fn spend(&self, input: UtxoPos, amount: U256) -> SignedTransaction {
        let tx = Transaction::payment(
            &[input],
            vec![Output::new(Address::repeat_byte(0xb0), Address::ZERO, amount)],
            B256::ZERO,
        );
        let sig = self.alice.sign_tx(&self.domain, &tx);
        SignedTransaction::new(tx, vec![sig])
    }
}

fn listed(v: &Value, pos: UtxoPos) -> bool {
    v["utxos"].as_array().is_some_and(|a| {
        a.iter().any(|u| u["utxoPos"].as_str() == Some(pos.to_u256().to_string().as_str()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exited_output_is_never_spendable_again_even_after_withdrawal() {
    let env = env(100).await;
    let eth = U256::from(10u64.pow(18));
    let exited = env.deposit(eth).await;
    let kept = env.deposit(eth).await;
    let l1_block = env.start_exit(exited).await;
    env.exits_read_up_to(l1_block).await;

    // Refused with the rule's name; no longer listed; the other output untouched.
    let (status, body) = env.submit(&env.spend(exited, eth)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "OutputExiting", "{body}");
    let owner = env.alice.address();
    let utxos = env.get(&format!("/v1/utxos?owner={owner}")).await;
    assert!(!listed(&utxos, exited), "an exiting output is not listed: {utxos}");
    assert!(listed(&utxos, kept), "{utxos}");
    let status_body = env.get("/v1/status").await;
    assert_eq!(status_body["chain"]["exitingOutputs"], 1, "{status_body}");

    // The reproduction: process and withdraw the exit on L1, then try to spend it again.
    env.chain
        .provider
        .raw_request::<_, Value>("evm_increaseTime".into(), (PERIOD + 1,))
        .await
        .unwrap();
    env.chain.provider.raw_request::<_, Value>("evm_mine".into(), ()).await.unwrap();
    let framework = PlasmaFramework::new(env.chain.deployment.framework, env.alice_l1.clone());
    let r = framework.processExits(Address::ZERO, U256::ZERO, U256::from(10)).send().await.unwrap();
    assert!(r.get_receipt().await.unwrap().status());
    let r = framework.withdraw(Address::ZERO).send().await.unwrap();
    assert!(r.get_receipt().await.unwrap().status());
    let head = env.chain.provider.get_block_number().await.unwrap();
    env.exits_read_up_to(head).await;
    let (status, body) = env.submit(&env.spend(exited, eth)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("OutputExiting")), "{body}");
    // The honest output still moves.
    let (status, body) = env.submit(&env.spend(kept, eth)).await;
    assert_eq!(status, 200, "{body}");

    // And the rule survives a restart (the exiting set is durable with its cursor).
    let dir = env._dir.path().to_path_buf();
    let Env { chain, node, .. } = env;
    node.stop().await;
    let mut c = Config::default();
    c.data_dir = dir;
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_url = chain.anvil.endpoint();
    c.l1.framework = chain.deployment.framework;
    c.l1.private_key = Some(chain.key_hex(0));
    let node = Node::start(c).await.unwrap();
    assert!(node.chain.exiting_since(exited).is_some(), "still exiting after a restart");
    assert!(node.chain.exiting_since(kept).is_none());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_spend_of_an_output_that_starts_exiting_is_dropped_not_included() {
    // Blocks only every 10 minutes: the spend waits in the mempool while the exit starts.
    let env = env(600_000).await;
    let eth = U256::from(10u64.pow(18));
    let pos = env.deposit(eth).await;
    let pending = env.spend(pos, eth);
    let (status, body) = env.submit(&pending).await;
    assert_eq!(status, 200, "{body}");
    let hash = pending.transaction.hash();
    assert_eq!(env.get(&format!("/v1/transactions/{hash}")).await["status"], "pending");

    let l1_block = env.start_exit(pos).await;
    env.exits_read_up_to(l1_block).await;
    let status = env.get("/v1/status").await;
    assert_eq!(status["chain"]["mempoolSize"], 0, "the doomed spend left the mempool: {status}");
    let lookup = env.get(&format!("/v1/transactions/{hash}")).await;
    assert_ne!(lookup["status"], "pending", "{lookup}");
    // Nothing was built from it: no child block exists.
    assert!(env.node.chain.block(1000).unwrap().is_none());
    env.node.stop().await;
}

/// OP-8 (BOND-2): past 250 deposits after a child block the operator commits one, empty if it
/// has no payments, so honest depositors never reach the slots that pay a fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_deposits_make_the_operator_commit_a_block_before_the_fee_starts() {
    let env = env(600_000).await; // no payments, and no interval-driven blocks
    let framework = PlasmaFramework::new(env.chain.deployment.framework, env.alice_l1.clone());
    let n = plasma_operator::DEPOSIT_SLOTS_BEFORE_BLOCK + 1;
    for _ in 0..n {
        let tx = Transaction::deposit(env.alice.address(), Address::ZERO, U256::from(1)).encode();
        let sent = framework.depositEth(tx.into()).value(U256::from(1)).send().await.unwrap();
        assert!(sent.get_receipt().await.unwrap().status());
    }
    env.wait_for("/v1/status", |v| v["chain"]["nextChildBlock"].as_u64() == Some(2000)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while framework.nextChildBlock().call().await.unwrap() != 2000 {
        assert!(tokio::time::Instant::now() < deadline, "the empty block was never committed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let block = env.node.chain.block(1000).unwrap().unwrap();
    assert!(block.txs.is_empty(), "an empty child block");
    assert_eq!(framework.depositFee().call().await.unwrap(), U256::ZERO, "slots are free again");
    env.node.stop().await;
}

/// LEDGER-9, item 4: a batch claim naming exactly an output's owner, token and amount makes the
/// operator refuse to spend it; a claim of the same owner's other coin with another amount is a
/// fake (CHAL-6) and freezes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_claimed_output_is_refused_and_a_fake_claim_freezes_nothing() {
    use plasma_contracts::BatchExitGame;
    use plasma_spec::batch_exit::encode_claims;
    let env = env(100).await;
    let eth = U256::from(10u64.pow(18));
    let claimed = env.deposit(eth).await;
    let faked = env.deposit(eth).await;
    // The youngest claim's block: a deposit block, whose root is the tree of its one transaction.
    let framework = PlasmaFramework::new(env.chain.deployment.framework, env.alice_l1.clone());
    let deposits = framework.DepositCreated_filter().from_block(0).query().await.unwrap();
    let (youngest, _) =
        deposits.iter().find(|(e, _)| e.blknum == U256::from(faked.blknum())).unwrap();
    let root = plasma_spec::BlockTree::from_txs(&[youngest.depositTx.to_vec()]).unwrap().root();
    let batch =
        BatchExitGame::new(framework.batchExitGame().call().await.unwrap(), env.alice_l1.clone());
    let group = BatchExitGame::Group {
        owner: env.alice.address(),
        deadline: U256::ZERO,
        nonce: U256::ZERO,
        signature: Bytes::new(),
        claims: encode_claims(&[(claimed, eth), (faked, eth + U256::from(1u8))]).unwrap().into(),
    };
    let value = batch.batchBondSize().call().await.unwrap()
        + batch.claimBondSize().call().await.unwrap() * U256::from(2u8);
    let receipt = batch
        .startBatchExit(Address::ZERO, root, youngest.timestamp, vec![group])
        .value(value)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "the batch started");
    env.exits_read_up_to(receipt.block_number.unwrap()).await;

    let (status, body) = env.submit(&env.spend(claimed, eth)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("OutputExiting")), "{body}");
    let utxos = env.get(&format!("/v1/utxos?owner={}", env.alice.address())).await;
    assert!(!listed(&utxos, claimed), "a claimed output is not listed: {utxos}");
    assert!(listed(&utxos, faked), "a fake claim hides nothing: {utxos}");
    let (status, body) = env.submit(&env.spend(faked, eth)).await;
    assert_eq!(status, 200, "a fake claim freezes nothing: {body}");
}
