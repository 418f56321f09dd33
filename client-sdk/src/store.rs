//! The wallet's local store of verified outputs: for each output it owns, the transaction, the
//! inclusion proof and the block's L1 timestamp — everything needed to exit without the operator.

use crate::error::SdkError;
use alloy::primitives::{Address, B256, Bytes, U256};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const OUTPUTS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("outputs");
/// Signed transactions this wallet sent, by hash: what an in-flight exit needs if their block is
/// withheld.
const SENT: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("sent");

/// A verified output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredOutput {
    /// Packed position (POS-1).
    pub utxo_pos: u128,
    /// Owner.
    pub owner: Address,
    /// Token (address(0) = ETH).
    pub token: Address,
    /// Amount.
    pub amount: U256,
    /// The creating transaction (ENC-1).
    pub tx_bytes: Bytes,
    /// Its inclusion proof (MERKLE-4).
    pub proof: Bytes,
    /// The block's root.
    pub root: B256,
    /// The block's L1 timestamp (MERKLE-6).
    pub block_timestamp: u64,
    /// Spent by a transaction of this wallet (pending or included).
    pub spent_by: Option<B256>,
    /// A standard exit was started for it.
    pub exiting: bool,
}

/// The store.
#[derive(Debug)]
pub struct ProofStore {
    db: Database,
}

impl ProofStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, SdkError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SdkError::Store(e.to_string()))?;
        }
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(OUTPUTS)?;
        tx.open_table(SENT)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Stores (or replaces) an output.
    pub fn put(&self, output: &StoredOutput) -> Result<(), SdkError> {
        let json = serde_json::to_vec(output).map_err(|e| SdkError::Store(e.to_string()))?;
        let tx = self.db.begin_write()?;
        tx.open_table(OUTPUTS)?.insert(output.utxo_pos, json.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Remembers a signed transaction this wallet sent (ENC-4 bytes).
    pub fn put_sent(&self, hash: B256, signed_tx: &[u8]) -> Result<(), SdkError> {
        let tx = self.db.begin_write()?;
        tx.open_table(SENT)?.insert(hash.as_slice(), signed_tx)?;
        tx.commit()?;
        Ok(())
    }

    /// A signed transaction this wallet sent.
    pub fn sent(&self, hash: B256) -> Result<Option<Vec<u8>>, SdkError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(SENT)?.get(hash.as_slice())?.map(|v| v.value().to_vec()))
    }

    /// One output.
    pub fn get(&self, utxo_pos: u128) -> Result<Option<StoredOutput>, SdkError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OUTPUTS)?;
        match table.get(utxo_pos)? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| SdkError::Store(e.to_string())),
            None => Ok(None),
        }
    }

    /// Every stored output.
    pub fn all(&self) -> Result<Vec<StoredOutput>, SdkError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OUTPUTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|e| SdkError::Store(e.to_string()))?,
            );
        }
        Ok(out)
    }
}
