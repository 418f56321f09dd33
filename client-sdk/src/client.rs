//! A typed client of the operator's HTTP API. Every answer is parsed defensively: a malformed one
//! is an error, never a panic, and nothing it says is trusted before `Wallet` checks it against L1.

use crate::error::SdkError;
use alloy::primitives::{Address, B256, Bytes, U256};
use serde_json::{Value, json};

/// The operator client.
#[derive(Clone, Debug)]
pub struct OperatorClient {
    base: String,
    http: reqwest::Client,
}

/// An unspent output as the operator lists it (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedUtxo {
    /// Position.
    pub utxo_pos: u128,
    /// Owner.
    pub owner: Address,
    /// Token.
    pub token: Address,
    /// Amount.
    pub amount: U256,
}

/// Exit data as the operator serves it (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitData {
    /// The creating transaction.
    pub tx_bytes: Bytes,
    /// Inclusion proof.
    pub proof: Bytes,
    /// Block root.
    pub root: B256,
    /// Block L1 timestamp.
    pub block_timestamp: u64,
}

/// A block as the operator serves it (unverified): child blocks carry signed transactions
/// (ENC-4), deposit blocks the deposit transaction (ENC-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockData {
    /// Its root.
    pub root: B256,
    /// The L1 timestamp of its commitment, once committed.
    pub l1_timestamp: Option<u64>,
    /// Its transactions.
    pub txs: Vec<Bytes>,
}

/// Where the operator says a transaction was included (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// Block.
    pub blknum: u64,
    /// Index in the block.
    pub tx_index: u16,
    /// The transaction (ENC-1).
    pub tx_bytes: Bytes,
    /// Inclusion proof.
    pub proof: Bytes,
    /// Block root.
    pub root: B256,
    /// Block L1 timestamp.
    pub block_timestamp: u64,
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, SdkError> {
    v.get(name).ok_or_else(|| SdkError::BadOperatorResponse(format!("missing `{name}`")))
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, SdkError> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| SdkError::BadOperatorResponse(format!("`{name}` is not a string")))
}

fn parse<T: std::str::FromStr>(v: &Value, name: &str) -> Result<T, SdkError> {
    str_field(v, name)?
        .parse()
        .map_err(|_| SdkError::BadOperatorResponse(format!("`{name}` does not parse")))
}

fn hex_field(v: &Value, name: &str) -> Result<Bytes, SdkError> {
    let s = str_field(v, name)?;
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
        .map(Bytes::from)
        .map_err(|_| SdkError::BadOperatorResponse(format!("`{name}` is not hex")))
}

impl OperatorClient {
    /// A client of the operator at `base` (e.g. `http://127.0.0.1:9656`).
    pub fn new(base: impl Into<String>) -> Self {
        Self { base: base.into().trim_end_matches('/').to_owned(), http: reqwest::Client::new() }
    }

    /// The operator's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, SdkError> {
        let resp = req.timeout(std::time::Duration::from_secs(30)).send().await.map_err(|e| {
            SdkError::OperatorUnreachable { url: self.base.clone(), reason: e.to_string() }
        })?;
        let status = resp.status();
        let body: Value =
            resp.json().await.map_err(|e| SdkError::BadOperatorResponse(e.to_string()))?;
        if let Some(err) = body.get("error") {
            return Err(SdkError::OperatorRefused {
                code: err.get("code").and_then(Value::as_str).unwrap_or("Unknown").to_owned(),
                message: err.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
            });
        }
        if !status.is_success() {
            return Err(SdkError::BadOperatorResponse(format!("HTTP {status}")));
        }
        Ok(body)
    }

    /// Submits a signed transaction (ENC-4 bytes); returns its hash.
    pub async fn submit(&self, signed_tx: &[u8]) -> Result<B256, SdkError> {
        let body = json!({"tx": format!("0x{}", hex::encode(signed_tx))});
        let v =
            self.call(self.http.post(format!("{}/v1/transactions", self.base)).json(&body)).await?;
        parse(&v, "txHash")
    }

    /// A transaction's status: `pending`, `included` or `committed` (with block and index).
    pub async fn tx_status(&self, hash: B256) -> Result<(String, Option<u64>), SdkError> {
        let v = self.call(self.http.get(format!("{}/v1/transactions/{hash}", self.base))).await?;
        Ok((str_field(&v, "status")?.to_owned(), v.get("blknum").and_then(Value::as_u64)))
    }

    /// Where a transaction was included, if the operator says its block is committed.
    pub async fn tx_inclusion(&self, hash: B256) -> Result<Option<Inclusion>, SdkError> {
        let v = self.call(self.http.get(format!("{}/v1/transactions/{hash}", self.base))).await?;
        if str_field(&v, "status")? != "committed" {
            return Ok(None);
        }
        let num = |name: &str| {
            field(&v, name)?
                .as_u64()
                .ok_or_else(|| SdkError::BadOperatorResponse(format!("`{name}` is not a number")))
        };
        Ok(Some(Inclusion {
            blknum: num("blknum")?,
            tx_index: u16::try_from(num("txIndex")?)
                .map_err(|_| SdkError::BadOperatorResponse("`txIndex` overflows".into()))?,
            tx_bytes: hex_field(&v, "txBytes")?,
            proof: hex_field(&v, "proof")?,
            root: parse(&v, "root")?,
            block_timestamp: num("blockTimestamp")?,
        }))
    }

    /// A block's transactions.
    pub async fn block(&self, blknum: u64) -> Result<BlockData, SdkError> {
        let v = self.call(self.http.get(format!("{}/v1/blocks/{blknum}", self.base))).await?;
        let txs = field(&v, "txs")?
            .as_array()
            .ok_or_else(|| SdkError::BadOperatorResponse("`txs` is not a list".into()))?
            .iter()
            .map(|t| {
                let s = t
                    .as_str()
                    .ok_or_else(|| SdkError::BadOperatorResponse("a tx is not a string".into()))?;
                hex::decode(s.strip_prefix("0x").unwrap_or(s))
                    .map(Bytes::from)
                    .map_err(|_| SdkError::BadOperatorResponse("a tx is not hex".into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(BlockData {
            root: parse(&v, "root")?,
            l1_timestamp: v.get("l1Timestamp").and_then(Value::as_u64),
            txs,
        })
    }

    /// The unspent outputs the operator lists for `owner`.
    pub async fn utxos(&self, owner: Address) -> Result<Vec<ListedUtxo>, SdkError> {
        let v = self.call(self.http.get(format!("{}/v1/utxos?owner={owner}", self.base))).await?;
        let list = field(&v, "utxos")?
            .as_array()
            .ok_or_else(|| SdkError::BadOperatorResponse("`utxos` is not a list".into()))?;
        list.iter()
            .map(|u| {
                Ok(ListedUtxo {
                    utxo_pos: parse(u, "utxoPos")?,
                    owner: parse(u, "owner")?,
                    token: parse(u, "token")?,
                    amount: parse(u, "amount")?,
                })
            })
            .collect()
    }

    /// The exit data of an output.
    pub async fn exit_data(&self, utxo_pos: u128) -> Result<ExitData, SdkError> {
        let v = self
            .call(self.http.get(format!("{}/v1/utxos/{utxo_pos}/exit-data", self.base)))
            .await?;
        Ok(ExitData {
            tx_bytes: hex_field(&v, "txBytes")?,
            proof: hex_field(&v, "inclusionProof")?,
            root: parse(&v, "root")?,
            block_timestamp: field(&v, "blockTimestamp")?.as_u64().ok_or_else(|| {
                SdkError::BadOperatorResponse("`blockTimestamp` is not a number".into())
            })?,
        })
    }
}
