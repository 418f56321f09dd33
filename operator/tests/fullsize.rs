//! Issue #15, the operator's side, over real HTTP against a real operator on anvil: blocks in the
//! wire form (streamed, with ranges), JSON refused for large blocks, paged UTXOs with proofs,
//! batch inclusion proofs, and all of it served identically after a restart.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    sol_types::SolValue,
};
use plasma_contracts::PlasmaFramework;
use plasma_operator::{Batch, Config, EncodedBlock, Node, Store, leaves_of};
use plasma_spec::{
    Output, Proof, SignedTransaction, Signer, Transaction, UtxoPos, leaf_hash,
    wire::{self, BlockDecoder},
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

mod common;
use common::Api;

type Env = common::devnet::Chain;

async fn env() -> Env {
    common::devnet::chain().await
}

fn config(env: &Env, data_dir: &std::path::Path) -> Config {
    common::devnet::devnet_config(&env.anvil, env.deployment.framework, data_dir)
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

/// GET with `Accept: application/vnd.plasma.block` and an optional range.
async fn get_binary(
    api: &Api,
    blknum: u64,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req =
        api.http.get(format!("{}/v1/blocks/{blknum}", api.base)).header("accept", wire::MEDIA_TYPE);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// A child block of `n` payments written straight to the store before the operator starts (its
/// signatures are placeholders: this tests storing and serving, not the ledger), so a block
/// larger than the JSON limit costs no signing. The operator commits its root to L1 like any.
fn seed_block(dir: &std::path::Path, blknum: u64, n: usize) -> Vec<Bytes> {
    let txs: Vec<Bytes> = (0..n)
        .map(|i| {
            let tx = Transaction::payment(
                &[UtxoPos::new(1, 0, 0).unwrap()],
                vec![Output::new(Address::repeat_byte(7), Address::ZERO, U256::from(i + 1))],
                B256::ZERO,
            );
            SignedTransaction::new(tx, vec![Bytes::from(vec![0x11; 65])]).encode().into()
        })
        .collect();
    let store = Store::open(&dir.join("operator.redb")).unwrap();
    let leaves = leaves_of(blknum, &txs).unwrap();
    let block = EncodedBlock::new(blknum, &txs, &leaves, None, None).unwrap();
    store
        .apply(&Batch {
            blocks: vec![block],
            meta: vec![("next_child_block", blknum + 1000)],
            ..Batch::default()
        })
        .unwrap();
    txs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_block_streams_in_the_wire_form_with_ranges_and_batch_proofs() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let n = 5_000;
    let txs = seed_block(dir.path(), 1000, n);
    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    // Committed on L1 by the operator's submitter.
    let status = api.wait_for("/v1/status", |v| v["chain"]["uncommittedBlocks"] == json!([])).await;
    assert_eq!(status["chain"]["nextChildBlock"], 2000);
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());

    // The whole block: headers, and the decoded transactions and root.
    let (code, headers, full) = get_binary(&api, 1000, None).await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], wire::MEDIA_TYPE);
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["content-length"].to_str().unwrap(), full.len().to_string());
    assert_eq!(headers["x-plasma-tx-count"].to_str().unwrap(), n.to_string());
    let ts: u64 = headers["x-plasma-l1-timestamp"].to_str().unwrap().parse().unwrap();
    let (header, got) = wire::decode_block(&full).unwrap();
    assert_eq!(header.encoding, wire::Encoding::Zlib);
    assert_eq!(got, txs, "the stored transactions, in order");
    assert_eq!(headers["x-plasma-root"].to_str().unwrap(), header.root.to_string());
    let tree_root =
        plasma_spec::BlockTree::from_leaves(&leaves_of(1000, &got).unwrap()).unwrap().root();
    assert_eq!(header.root, tree_root, "the header's root is the block's");
    let commitment = framework.blockCommitments(U256::from(1000)).call().await.unwrap();
    assert_eq!(commitment, keccak256((tree_root, U256::from(ts)).abi_encode()), "and L1's");
    assert!(full.len() * 2 < n * 600, "compressed: {} bytes", full.len());

    // Resumed: a first part, then the rest from where it stopped, fed to one decoder.
    let cut = full.len() / 3;
    let (code, h1, part1) = get_binary(&api, 1000, Some(&format!("bytes=0-{}", cut - 1))).await;
    assert_eq!(code, 206);
    assert_eq!(
        h1["content-range"].to_str().unwrap(),
        format!("bytes 0-{}/{}", cut - 1, full.len())
    );
    let mut decoder = BlockDecoder::new();
    decoder.push(&part1).unwrap();
    let (code, _, part2) =
        get_binary(&api, 1000, Some(&format!("bytes={}-", decoder.received()))).await;
    assert_eq!(code, 206);
    decoder.push(&part2).unwrap();
    assert_eq!([part1, part2].concat(), full, "identical bytes");
    assert_eq!(decoder.finish().unwrap().1, txs);
    let (code, _, tail) = get_binary(&api, 1000, Some("bytes=-100")).await;
    assert_eq!((code, tail.as_slice()), (206, &full[full.len() - 100..]));

    // Unsatisfiable or malformed ranges: 416 naming the length.
    for bad in [format!("bytes={}-", full.len()), "bytes=abc".into(), "bytes=9-3".into()] {
        let (code, h, _) = get_binary(&api, 1000, Some(&bad)).await;
        assert_eq!(code, 416, "{bad}");
        assert_eq!(h["content-range"].to_str().unwrap(), format!("bytes */{}", full.len()));
    }
    assert_eq!(get_binary(&api, 9000, None).await.0, 404);

    // JSON is refused above 4,096 transactions, naming the media type.
    let (code, body) = api.get("/v1/blocks/1000").await;
    assert_eq!(code, 413);
    assert_eq!(body["error"]["code"], "BlockTooLargeForJson");
    assert!(body["error"]["message"].as_str().unwrap().contains(wire::MEDIA_TYPE));

    // Batch proofs: in request order, verified against the root, per-item errors.
    let ask = json!({"txs": [
        {"blknum": 1000, "txIndex": 4999},
        {"blknum": 1000, "txIndex": 0},
        {"blknum": 1000, "txIndex": 5000},
        {"blknum": 3000, "txIndex": 0},
        {"blknum": 1000, "txIndex": 2345},
    ]});
    let (code, body) = api.post("/v1/inclusions", ask.to_string().into_bytes()).await;
    assert_eq!(code, 200, "{body}");
    let items = body["inclusions"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for (item, index) in [(&items[0], 4999usize), (&items[1], 0), (&items[4], 2345)] {
        assert_eq!(item["txIndex"], index);
        assert_eq!(unhex(&item["signedTx"]), txs[index].to_vec());
        let tx_bytes = unhex(&item["txBytes"]);
        assert_eq!(tx_bytes, SignedTransaction::decode(&txs[index]).unwrap().transaction.encode());
        let proof = Proof::from_bytes(&unhex(&item["proof"])).unwrap();
        assert!(proof.verify(leaf_hash(&tx_bytes), index, tree_root), "proof of {index}");
        assert_eq!(item["root"].as_str().unwrap().parse::<B256>().unwrap(), tree_root);
        assert_eq!(item["blockTimestamp"], ts);
    }
    assert_eq!(items[2]["error"]["code"], "TxIndexOutOfRange");
    assert_eq!(items[3]["error"]["code"], "UnknownBlock");
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"blknum": 1000, "txIndex": i})).collect();
    let (code, body) =
        api.post("/v1/inclusions", json!({"txs": too_many}).to_string().into_bytes()).await;
    assert_eq!((code, body["error"]["code"].as_str()), (413, Some("BatchTooLarge")));
    let (code, body) =
        api.post("/v1/inclusions", br#"{"txs":[{"blknum":1}],"x":1}"#.to_vec()).await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("MalformedJson")));
    let (_, before) = api.post("/v1/inclusions", ask.to_string().into_bytes()).await;
    node.stop().await;

    // A restart serves the same bytes and the same proofs.
    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    let (code, headers2, again) = get_binary(&api, 1000, None).await;
    assert_eq!((code, again == full), (200, true));
    assert_eq!(headers2["x-plasma-l1-timestamp"], headers["x-plasma-l1-timestamp"]);
    let (_, after) = api.post("/v1/inclusions", ask.to_string().into_bytes()).await;
    assert_eq!(after, before);
    node.stop().await;
}

async fn deposit(env: &Env, owner: &Signer, amount: U256) -> UtxoPos {
    common::deposit_eth(&env.provider, env.deployment.framework, owner.address(), amount).await
}

/// alice pays herself `from` split into five equal outputs.
async fn split(env: &Env, api: &Api, from: UtxoPos, amount: u64) -> u64 {
    let alice = env.alice.address();
    let outs = (0..5).map(|_| Output::new(alice, Address::ZERO, U256::from(amount / 5))).collect();
    let tx = Transaction::payment(&[from], outs, B256::ZERO);
    let signed = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&env.domain, &tx)]);
    assert_eq!(api.submit(&signed).await.0, 200);
    let info = api
        .wait_for(&format!("/v1/transactions/{}", tx.hash()), |v| v["status"] == "committed")
        .await;
    info["blknum"].as_u64().unwrap()
}

/// Walks `/v1/utxos` pages of `limit`, returning every entry in order.
async fn walk(api: &Api, owner: Address, limit: usize, proofs: bool) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/utxos?owner={owner}&limit={limit}&proofs={proofs}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let (code, page) = api.get(&path).await;
        assert_eq!(code, 200, "{page}");
        let items = page["utxos"].as_array().unwrap();
        assert!(items.len() <= limit);
        all.extend(items.iter().cloned());
        match page["next"].as_str() {
            Some(n) => {
                assert_eq!(Some(n), items.last().unwrap()["utxoPos"].as_str());
                after = Some(n.to_owned());
            }
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utxo_pages_walk_every_output_once_with_proofs_that_verify() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    let alice = env.alice.address();
    let dep = deposit(&env, &env.alice, U256::from(1000)).await;
    api.wait_for(&format!("/v1/utxos?owner={alice}"), |v| {
        v["utxos"].as_array().unwrap().len() == 1
    })
    .await;
    let b1 = split(&env, &api, dep, 1000).await;
    let b2 = split(&env, &api, UtxoPos::new(b1, 0, 0).unwrap(), 200).await;
    // alice: four outputs of block b1, five of b2, plus one more deposit.
    let dep2 = deposit(&env, &env.alice, U256::from(7)).await;
    api.wait_for(&format!("/v1/utxos?owner={alice}"), |v| {
        v["utxos"].as_array().unwrap().len() == 10
    })
    .await;

    let (_, first) = api.get(&format!("/v1/utxos?owner={alice}")).await;
    assert_eq!(first["next"], Value::Null, "one default page holds all ten");
    let everything = first["utxos"].as_array().unwrap().clone();
    let positions: Vec<u128> =
        everything.iter().map(|u| u["utxoPos"].as_str().unwrap().parse().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "ascending");
    assert!(positions.contains(&dep2.to_u128()));
    for limit in [1, 3, 4, 10] {
        let walked = walk(&api, alice, limit, false).await;
        assert_eq!(walked, everything, "limit {limit}: each output once, in order");
    }
    let set: BTreeSet<u128> = positions.iter().copied().collect();
    assert_eq!(set.len(), 10);

    // With proofs: every entry's exit data verifies against L1's commitment.
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let with_proofs = walk(&api, alice, 4, true).await;
    assert_eq!(with_proofs.len(), 10);
    for u in &with_proofs {
        let pos = UtxoPos::from_u128(u["utxoPos"].as_str().unwrap().parse().unwrap()).unwrap();
        let exit = &u["exitData"];
        let root: B256 = exit["root"].as_str().unwrap().parse().unwrap();
        let proof = Proof::from_bytes(&unhex(&exit["inclusionProof"])).unwrap();
        assert!(proof.verify(leaf_hash(&unhex(&exit["txBytes"])), pos.tx_index().into(), root));
        let ts = exit["blockTimestamp"].as_u64().unwrap();
        let on_l1 = framework.blockCommitments(U256::from(pos.blknum())).call().await.unwrap();
        if !plasma_spec::is_deposit_block(pos.blknum()) {
            assert_eq!(on_l1, keccak256((root, U256::from(ts)).abi_encode()), "{pos}");
        }
        // The same as the single exit-data route.
        let (_, single) = api.get(&format!("/v1/utxos/{}/exit-data", pos.to_u128())).await;
        assert_eq!(&single, exit);
    }
    assert!(
        with_proofs
            .iter()
            .any(|u| u["utxoPos"] == json!(UtxoPos::new(b2, 0, 4).unwrap().to_u128().to_string()))
    );

    // Refusals, each with its code.
    for (query, code) in [
        (format!("owner={alice}&limit=0"), "BadLimit"),
        (format!("owner={alice}&limit=10001"), "BadLimit"),
        (format!("owner={alice}&limit=1001&proofs=true"), "BadLimit"),
        (format!("owner={alice}&limit=x"), "BadLimit"),
        (format!("owner={alice}&page=2"), "MalformedQuery"),
        (format!("owner={alice}&limit=1&limit=2"), "MalformedQuery"),
        (format!("owner={alice}&proofs=yes"), "MalformedQuery"),
        (format!("owner={alice}&after=zz"), "MalformedPosition"),
        ("limit=5".to_owned(), "MalformedQuery"),
    ] {
        let (status, body) = api.get(&format!("/v1/utxos?{query}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{query}");
    }
    node.stop().await;

    // After a restart: the same pages.
    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    assert_eq!(walk(&api, alice, 3, true).await, with_proofs);
    node.stop().await;
}
