//! Transactions: types, canonical encoding, hashes and the stateless rules (spec: ENC, TX, OUT).

use crate::{
    constants::{MAX_INPUTS, MAX_OUTPUTS, MAX_SIGNED_TX_BYTES, MAX_TX_BYTES},
    error::{DecodeError, TxError},
    position::UtxoPos,
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolValue, sol};

sol! {
    /// One output: who owns how much of which token (`address(0)` is ETH).
    #[derive(Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct Output {
        address owner;
        address token;
        uint256 amount;
    }

    /// A child-chain transaction (spec: ENC-1). `inputs` are packed UTXO positions.
    #[derive(Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct Transaction {
        uint8 txType;
        uint256[] inputs;
        Output[] outputs;
        bytes32 metadata;
    }

    /// A transaction with one 65-byte signature per input, in input order (spec: ENC-4).
    #[derive(Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct SignedTransaction {
        Transaction transaction;
        bytes[] signatures;
    }
}

/// The kinds of transaction (spec: TX-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TxType {
    /// Spends 1–5 signed inputs into 1–5 outputs.
    Payment = 1,
    /// Made by the L1 contract for one deposit; no inputs, one output; only in deposit blocks.
    Deposit = 2,
    /// The operator's claim on a block's fees; no inputs; only as a child block's last tx.
    Fee = 3,
}

impl TxType {
    /// The type byte's meaning (spec: TX-1).
    pub const fn from_u8(tx_type: u8) -> Result<Self, TxError> {
        match tx_type {
            1 => Ok(Self::Payment),
            2 => Ok(Self::Deposit),
            3 => Ok(Self::Fee),
            _ => Err(TxError::UnknownTxType { tx_type }),
        }
    }
}

/// Decodes `data` as exactly one canonical ABI encoding of `T` (spec: ENC-2, ENC-3).
fn decode_strict<T: SolValue + From<<T::SolType as alloy_sol_types::SolType>::RustType>>(
    data: &[u8],
    max: usize,
) -> Result<T, DecodeError> {
    if data.len() > max {
        return Err(DecodeError::TooLarge { len: data.len(), max });
    }
    let value =
        T::abi_decode(data).map_err(|e| DecodeError::Malformed { reason: e.to_string() })?;
    // Decoders accept padding, aliasing offsets and trailing bytes; only a byte-exact re-encoding
    // proves the input was the canonical form, so one transaction never has two hashes.
    if value.abi_encode() != data {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

impl Output {
    /// Length of [`Output::to_packed`].
    pub const PACKED_LEN: usize = 72;

    /// An output.
    pub const fn new(owner: Address, token: Address, amount: U256) -> Self {
        Self { owner, token, amount }
    }

    /// The compact form the operator and the watcher keep in their UTXO tables:
    /// owner ‖ token ‖ amount (20 + 20 + 32 bytes). Not a wire format: transactions carry
    /// outputs ABI-encoded (ENC-1).
    pub fn to_packed(&self) -> [u8; Self::PACKED_LEN] {
        let mut out = [0u8; Self::PACKED_LEN];
        out[..20].copy_from_slice(self.owner.as_slice());
        out[20..40].copy_from_slice(self.token.as_slice());
        out[40..].copy_from_slice(&self.amount.to_be_bytes::<32>());
        out
    }

    /// Reads [`Output::to_packed`]'s form; `None` if `b` is not exactly that long.
    pub fn from_packed(b: &[u8]) -> Option<Self> {
        (b.len() == Self::PACKED_LEN).then(|| {
            Self::new(
                Address::from_slice(&b[..20]),
                Address::from_slice(&b[20..40]),
                U256::from_be_slice(&b[40..]),
            )
        })
    }
}

impl Transaction {
    /// A payment spending `inputs` into `outputs`.
    pub fn payment(inputs: &[UtxoPos], outputs: Vec<Output>, metadata: B256) -> Self {
        Self {
            txType: TxType::Payment as u8,
            inputs: inputs.iter().map(UtxoPos::to_u256).collect(),
            outputs,
            metadata,
        }
    }

    /// The deposit transaction the contract builds for a deposit (spec: LEDGER-7).
    pub fn deposit(owner: Address, token: Address, amount: U256) -> Self {
        Self {
            txType: TxType::Deposit as u8,
            inputs: Vec::new(),
            outputs: vec![Output::new(owner, token, amount)],
            metadata: B256::ZERO,
        }
    }

    /// A fee transaction paying collected fees to `outputs` (spec: LEDGER-6).
    pub fn fee(outputs: Vec<Output>) -> Self {
        Self { txType: TxType::Fee as u8, inputs: Vec::new(), outputs, metadata: B256::ZERO }
    }

    /// The canonical encoding, `abi.encode(tx)` (spec: ENC-1).
    pub fn encode(&self) -> Vec<u8> {
        self.abi_encode()
    }

    /// Strict decoding (spec: ENC-2, ENC-3). Stateless validity is a separate step,
    /// [`Transaction::check`].
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        decode_strict(data, MAX_TX_BYTES)
    }

    /// `keccak256(txBytes)` (spec: ENC-5).
    pub fn hash(&self) -> B256 {
        keccak256(self.encode())
    }

    /// The transaction's type, if known (spec: TX-1).
    pub const fn tx_type(&self) -> Result<TxType, TxError> {
        TxType::from_u8(self.txType)
    }

    /// The inputs as positions. Fails on the first invalid one (spec: TX-3).
    pub fn input_positions(&self) -> Result<Vec<UtxoPos>, TxError> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(input_index, raw)| {
                UtxoPos::from_u256(*raw)
                    .map_err(|source| TxError::InvalidPosition { input_index, source })
            })
            .collect()
    }

    /// The stateless rules (spec: TX-1..TX-5). Returns the type and the parsed inputs so callers
    /// do not parse twice.
    pub fn check(&self) -> Result<(TxType, Vec<UtxoPos>), TxError> {
        let tx_type = self.tx_type()?; // spec: TX-1
        let (inputs_ok, outputs_ok) = match tx_type {
            TxType::Payment => (
                (1..=MAX_INPUTS).contains(&self.inputs.len()),
                (1..=MAX_OUTPUTS).contains(&self.outputs.len()),
            ),
            TxType::Deposit => (self.inputs.is_empty(), self.outputs.len() == 1),
            TxType::Fee => {
                (self.inputs.is_empty(), (1..=MAX_OUTPUTS).contains(&self.outputs.len()))
            }
        };
        // spec: TX-2
        if !inputs_ok {
            return Err(TxError::WrongInputCount {
                tx_type: self.txType,
                count: self.inputs.len(),
            });
        }
        if !outputs_ok {
            return Err(TxError::WrongOutputCount {
                tx_type: self.txType,
                count: self.outputs.len(),
            });
        }
        // spec: TX-3. At most five inputs: a quadratic scan beats hashing.
        let inputs = self.input_positions()?;
        for (i, input) in inputs.iter().enumerate() {
            if inputs[..i].contains(input) {
                return Err(TxError::DuplicateInput { input: *input });
            }
        }
        // spec: TX-4
        for (output_index, output) in self.outputs.iter().enumerate() {
            if output.amount.is_zero() {
                return Err(TxError::ZeroAmount { output_index });
            }
            if output.owner.is_zero() {
                return Err(TxError::ZeroOwner { output_index });
            }
        }
        // spec: TX-5
        self.output_sums()?;
        Ok((tx_type, inputs))
    }

    /// Per-token sums of the outputs, in order of first appearance (spec: TX-5).
    pub fn output_sums(&self) -> Result<TokenSums, TxError> {
        let mut sums = TokenSums::default();
        for output in &self.outputs {
            sums.add(output.token, output.amount)?;
        }
        Ok(sums)
    }

    /// The output's L1 identity (spec: OUT-1). `utxo_pos` is needed only for transactions
    /// without inputs: their bytes can repeat (two equal deposits), their positions cannot.
    pub fn output_id(&self, output_index: u8, utxo_pos: UtxoPos) -> B256 {
        output_id(self.hash(), !self.inputs.is_empty(), output_index, utxo_pos)
    }
}

/// The output's L1 identity from its transaction hash (spec: OUT-1).
pub fn output_id(tx_hash: B256, has_inputs: bool, output_index: u8, utxo_pos: UtxoPos) -> B256 {
    if has_inputs {
        keccak256((tx_hash, U256::from(output_index)).abi_encode())
    } else {
        keccak256((tx_hash, utxo_pos.to_u256()).abi_encode())
    }
}

impl SignedTransaction {
    /// Pairs a transaction with its signatures.
    pub fn new(transaction: Transaction, signatures: Vec<Bytes>) -> Self {
        Self { transaction, signatures }
    }

    /// The wire encoding (spec: ENC-4).
    pub fn encode(&self) -> Vec<u8> {
        self.abi_encode()
    }

    /// Strict decoding of the wire encoding (spec: ENC-2, ENC-3, ENC-4).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        decode_strict(data, MAX_SIGNED_TX_BYTES)
    }

    /// The hash of the transaction; signatures are not part of it (spec: ENC-5).
    pub fn hash(&self) -> B256 {
        self.transaction.hash()
    }
}

/// Amounts per token, kept in first-seen order. A transaction touches at most ten tokens, so a
/// small vector is faster than a map and keeps error reports deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenSums(Vec<(Address, U256)>);

impl TokenSums {
    /// Adds `amount` to `token`'s sum (spec: TX-5: overflow is an error, never a wrap).
    pub fn add(&mut self, token: Address, amount: U256) -> Result<(), TxError> {
        match self.0.iter_mut().find(|(t, _)| *t == token) {
            Some((_, sum)) => {
                *sum = sum.checked_add(amount).ok_or(TxError::AmountOverflow { token })?;
            }
            None => self.0.push((token, amount)),
        }
        Ok(())
    }

    /// The sum for `token`, zero if absent.
    pub fn get(&self, token: Address) -> U256 {
        self.0.iter().find(|(t, _)| *t == token).map_or(U256::ZERO, |(_, a)| *a)
    }

    /// Every `(token, sum)` pair, in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (Address, U256)> + '_ {
        self.0.iter().copied()
    }

    /// Whether no token has been added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{MAX_SIGNED_TX_BYTES, encoded_tx_len};
    use alloy_primitives::address;

    const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");
    const ETH: Address = Address::ZERO;

    fn pos(blk: u64, tx: u16, out: u8) -> UtxoPos {
        UtxoPos::new(blk, tx, out).unwrap()
    }

    #[test]
    fn packed_output_round_trips_and_refuses_other_lengths() {
        let o =
            Output::new(ALICE, address!("0x00000000000000000000000000000000000070c3"), U256::MAX);
        let packed = o.to_packed();
        assert_eq!(&packed[..20], ALICE.as_slice());
        assert_eq!(Output::from_packed(&packed), Some(o));
        assert_eq!(Output::from_packed(&packed[..71]), None);
        assert_eq!(Output::from_packed(&[packed.as_slice(), &[0]].concat()), None);
    }

    fn full_tx() -> Transaction {
        let inputs: Vec<_> = (0..5).map(|i| pos(1000, i, 0)).collect();
        let outputs = (0..5).map(|_| Output::new(ALICE, ETH, U256::from(1))).collect();
        Transaction::payment(&inputs, outputs, B256::repeat_byte(7))
    }

    #[test]
    fn encoded_lengths_match_the_spec() {
        let tx = full_tx();
        assert_eq!(tx.encode().len(), MAX_TX_BYTES);
        assert_eq!(MAX_TX_BYTES, 864);
        let one = Transaction::payment(
            &[pos(1000, 0, 0)],
            vec![Output::new(ALICE, ETH, U256::from(1))],
            B256::ZERO,
        );
        assert_eq!(one.encode().len(), encoded_tx_len(1, 1));
        let signed = SignedTransaction::new(tx, vec![Bytes::from(vec![1u8; 65]); 5]);
        assert_eq!(signed.encode().len(), MAX_SIGNED_TX_BYTES);
    }

    #[test]
    fn encoding_is_abi_encode_of_the_struct() {
        // `abi.encode(tx)` of a dynamic struct starts with the offset of its tuple: 0x20.
        let bytes = full_tx().encode();
        assert_eq!(U256::from_be_slice(&bytes[..32]), U256::from(32));
        assert_eq!(U256::from_be_slice(&bytes[32..64]), U256::from(1)); // txType
    }

    #[test]
    fn decode_round_trips_and_rejects_trailing_bytes() {
        let bytes = full_tx().encode();
        assert_eq!(Transaction::decode(&bytes).unwrap(), full_tx());
        let mut longer = bytes;
        longer.extend_from_slice(&[0; 32]);
        assert_eq!(
            Transaction::decode(&longer),
            Err(DecodeError::TooLarge { len: MAX_TX_BYTES + 32, max: MAX_TX_BYTES })
        );
        let short = Transaction::payment(&[pos(1000, 0, 0)], vec![], B256::ZERO).encode();
        let mut trailing = short;
        trailing.push(0);
        assert_eq!(Transaction::decode(&trailing), Err(DecodeError::NonCanonical));
    }

    #[test]
    fn decode_rejects_dirty_type_byte() {
        let mut bytes = full_tx().encode();
        bytes[32] = 1; // high bytes of the uint8 txType word
        assert!(Transaction::decode(&bytes).is_err());
    }

    #[test]
    fn check_enforces_the_stateless_rules() {
        assert_eq!(full_tx().check().unwrap().0, TxType::Payment);
        let mut tx = full_tx();
        tx.txType = 9;
        assert_eq!(tx.check(), Err(TxError::UnknownTxType { tx_type: 9 }));
        let mut tx = full_tx();
        tx.inputs[1] = tx.inputs[0];
        assert_eq!(tx.check(), Err(TxError::DuplicateInput { input: pos(1000, 0, 0) }));
        let mut tx = full_tx();
        tx.outputs[2].amount = U256::ZERO;
        assert_eq!(tx.check(), Err(TxError::ZeroAmount { output_index: 2 }));
        let mut tx = full_tx();
        tx.outputs[3].owner = Address::ZERO;
        assert_eq!(tx.check(), Err(TxError::ZeroOwner { output_index: 3 }));
        let mut tx = full_tx();
        tx.outputs[0].amount = U256::MAX;
        assert_eq!(tx.check(), Err(TxError::AmountOverflow { token: ETH }));
        let mut tx = full_tx();
        tx.inputs[0] = U256::from(7);
        assert!(matches!(tx.check(), Err(TxError::InvalidPosition { input_index: 0, .. })));
        let tx =
            Transaction::payment(&[], vec![Output::new(ALICE, ETH, U256::from(1))], B256::ZERO);
        assert_eq!(tx.check(), Err(TxError::WrongInputCount { tx_type: 1, count: 0 }));
        let mut tx = Transaction::deposit(ALICE, ETH, U256::from(1));
        tx.outputs.push(Output::new(ALICE, ETH, U256::from(1)));
        assert_eq!(tx.check(), Err(TxError::WrongOutputCount { tx_type: 2, count: 2 }));
        assert_eq!(Transaction::fee(vec![]).check().unwrap_err().code(), "WrongOutputCount");
    }

    #[test]
    fn equal_deposits_have_distinct_output_ids() {
        let tx = Transaction::deposit(ALICE, ETH, U256::from(5));
        assert_ne!(tx.output_id(0, pos(1, 0, 0)), tx.output_id(0, pos(2, 0, 0)));
        // A payment's outputs are identified by its hash alone: the same tx included twice by a
        // byzantine operator still has one id per output.
        let pay = full_tx();
        assert_eq!(pay.output_id(1, pos(1000, 0, 1)), pay.output_id(1, pos(2000, 5, 1)));
        assert_ne!(pay.output_id(1, pos(1000, 0, 1)), pay.output_id(2, pos(1000, 0, 2)));
    }
}
