//! `POST /v1/transactions/batch` with the binary body (OP-1) on a real node against anvil:
//! results in frame order, refusals that change nothing, malformed framing, too many frames and
//! too big a body refused whole, and the ingest counters in `/metrics`.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::devnet::LocalChain;
use plasma_operator::{
    Config, Node,
    ingest::{BATCH_MEDIA_TYPE, encode_batch},
};
use plasma_spec::{Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos};
use serde_json::Value;

#[allow(dead_code)] // the helpers this test does not call
mod common;
use common::Api;

fn pay(domain: &SigningDomain, by: &Signer, input: UtxoPos, to: Address, amount: U256) -> Vec<u8> {
    let tx =
        Transaction::payment(&[input], vec![Output::new(to, Address::ZERO, amount)], B256::ZERO);
    SignedTransaction::new(tx.clone(), vec![by.sign_tx(domain, &tx)]).encode()
}

async fn post_binary(api: &Api, body: Vec<u8>) -> (u16, Value) {
    let r = api
        .http
        .post(format!("{}/v1/transactions/batch", api.base))
        .header("content-type", BATCH_MEDIA_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn codes(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["txHash"].as_str() {
            Some(_) => "ok".to_owned(),
            None => r["error"]["code"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_batches_keep_order_and_refuse_bad_framing_whole() {
    let LocalChain { anvil, deployment, .. } = LocalChain::start(60).await.unwrap();
    let alice_key: PrivateKeySigner = anvil.keys()[1].clone().into();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::new(alice_key))
        .connect_http(anvil.endpoint_url())
        .erased();
    let alice = Signer::from_bytes(&B256::from_slice(&anvil.keys()[1].to_bytes())).unwrap();
    let bob = Signer::from_bytes(&B256::from_slice(&anvil.keys()[2].to_bytes())).unwrap();
    let domain = SigningDomain::new(anvil.chain_id(), deployment.framework);

    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::devnet();
    c.data_dir = dir.path().into();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_url = anvil.endpoint();
    c.l1.framework = deployment.framework;
    c.l1.private_key = Some(format!("0x{}", hex::encode(anvil.keys()[0].to_bytes())));
    c.l1.poll_interval_ms = 50;
    c.l1.deposit_confirmations = 1;
    c.block.interval_ms = 3_600_000; // no block: the mempool is what this test looks at
    c.api.max_batch = 6;
    c.api.max_body_bytes = 16 * 1024;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);

    let amount = U256::from(1_000_000u64);
    let mut deps = Vec::new();
    for _ in 0..4 {
        let framework = deployment.framework;
        deps.push(common::deposit_eth(&provider, framework, alice.address(), amount).await);
    }
    let owner = alice.address();
    api.wait_for(&format!("/v1/utxos?owner={owner}"), |v| {
        v["utxos"].as_array().is_some_and(|u| u.len() == 4)
    })
    .await;

    // Malformed framing: a valid transaction, then a frame announcing more than follows.
    let good0 = pay(&domain, &alice, deps[0], bob.address(), amount);
    let mut truncated = encode_batch(&[&good0]);
    truncated.extend_from_slice(&200u32.to_be_bytes());
    truncated.extend_from_slice(&[1, 2, 3]);
    let (status, body) = post_binary(&api, truncated).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("MalformedFrame")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("frame 1"), "{body}");
    // A body ending inside a length prefix.
    let mut short = encode_batch(&[&good0]);
    short.extend_from_slice(&[0, 0]);
    assert_eq!(post_binary(&api, short).await.1["error"]["code"], "MalformedFrame");
    // More frames than max_batch (6).
    let seven: Vec<&Vec<u8>> = std::iter::repeat_n(&good0, 7).collect();
    let (status, body) = post_binary(&api, encode_batch(&seven)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("BatchTooLarge")), "{body}");
    // A body over max_body_bytes.
    let big = vec![0u8; 20_000];
    let (status, body) = post_binary(&api, encode_batch(&[&big])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("BodyTooLarge")), "{body}");
    // None of that submitted anything, the valid transaction in them included.
    let api = Api::new(&node); // the 413 closed that connection
    assert_eq!(api.get("/v1/status").await.1["chain"]["mempoolSize"], 0);
    let good0_hash = SignedTransaction::decode(&good0).unwrap().transaction.hash();
    assert_eq!(api.get(&format!("/v1/transactions/{good0_hash}")).await.0, 404);

    // Mixed: results in frame order, each refusal named, the refused ones changing nothing.
    let forged = pay(&domain, &bob, deps[1], bob.address(), amount); // alice owns deps[1]
    let good2 = pay(&domain, &alice, deps[2], bob.address(), amount - U256::from(7));
    let conflict = pay(&domain, &alice, deps[0], alice.address(), amount - U256::from(1));
    let garbage = vec![0xde, 0xad];
    let empty = Vec::new();
    let frames = [&good0, &forged, &good2, &conflict, &garbage, &empty];
    let (status, body) = post_binary(&api, encode_batch(&frames)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        codes(&body),
        ["ok", "WrongSigner", "ok", "MempoolConflict", "Malformed", "Malformed"],
        "{body}"
    );
    let good2_hash = SignedTransaction::decode(&good2).unwrap().transaction.hash();
    assert_eq!(body["results"][0]["txHash"].as_str().unwrap().parse::<B256>().unwrap(), good0_hash);
    assert_eq!(body["results"][2]["txHash"].as_str().unwrap().parse::<B256>().unwrap(), good2_hash);
    assert!(
        body["results"][3]["error"]["message"].as_str().unwrap().contains(&good0_hash.to_string()),
        "the conflict names the earlier spend: {body}"
    );
    assert_eq!(api.get("/v1/status").await.1["chain"]["mempoolSize"], 2);
    // The forged spend's input is still free: its owner spends it now; the same batch again
    // is known.
    let good1 = pay(&domain, &alice, deps[1], bob.address(), amount);
    let (status, body) = post_binary(&api, encode_batch(&[&good1, &good0])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(codes(&body), ["ok", "AlreadyKnown"], "{body}");
    // A content type with parameters is still the binary body; an empty body holds nothing.
    let r = api
        .http
        .post(format!("{}/v1/transactions/batch", api.base))
        .header("content-type", "Application/Octet-Stream; charset=binary")
        .header("content-length", "0")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["results"], serde_json::json!([]));
    // The JSON body on the same route still works.
    let good3 = pay(&domain, &alice, deps[3], bob.address(), amount);
    let json = serde_json::json!({"txs": [format!("0x{}", hex::encode(&good3))]});
    let (status, body) = api.post("/v1/transactions/batch", json.to_string().into_bytes()).await;
    assert_eq!((status, codes(&body)), (200, vec!["ok".to_owned()]), "{body}");
    assert_eq!(api.get("/v1/status").await.1["chain"]["mempoolSize"], 4);

    // The ingest stages are counted.
    let metrics =
        reqwest::get(format!("{}/metrics", api.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("plasma_operator_txs_accepted_total 4"), "{metrics}");
    for stage in ["queue_wait", "recover", "lock_wait", "validate", "persist", "publish"] {
        assert!(
            metrics.contains(&format!("plasma_operator_ingest_seconds_total{{stage=\"{stage}\"}}")),
            "{stage}: {metrics}"
        );
    }
    // 4 accepted transactions were persisted (the refused ones never reach the write).
    assert!(metrics.contains("plasma_operator_ingest_txs_total{stage=\"persist\"} 4"), "{metrics}");
    node.stop().await;
}
