//! Property tests over the wire types, the decoder and the ledger.

use alloy_primitives::{Address, B256, Bytes, U256};
use plasma_spec::{
    BlockBuilder, BlockDiff, LedgerError, MAX_TX_BYTES, Output, SignedTransaction, Transaction,
    UtxoPos, UtxoSet, validate_child_block,
    vectors::{test_key, vector_domain},
};
use proptest::prelude::*;

fn arb_address() -> impl Strategy<Value = Address> {
    prop_oneof![Just(Address::ZERO), any::<[u8; 20]>().prop_map(Address::from)]
}

fn arb_u256() -> impl Strategy<Value = U256> {
    prop_oneof![
        Just(U256::ZERO),
        Just(U256::MAX),
        any::<u64>().prop_map(U256::from),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes),
    ]
}

fn arb_output() -> impl Strategy<Value = Output> {
    (arb_address(), arb_address(), arb_u256()).prop_map(|(o, t, a)| Output::new(o, t, a))
}

/// Any transaction the encoding can carry, valid or not, up to a few more elements than allowed.
fn arb_tx() -> impl Strategy<Value = Transaction> {
    (
        any::<u8>(),
        prop::collection::vec(arb_u256(), 0..7),
        prop::collection::vec(arb_output(), 0..7),
        any::<[u8; 32]>(),
    )
        .prop_map(|(t, inputs, outputs, m)| Transaction {
            txType: t,
            inputs,
            outputs,
            metadata: B256::from(m),
        })
}

fn arb_signed() -> impl Strategy<Value = SignedTransaction> {
    (arb_tx(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..70), 0..6)).prop_map(
        |(tx, sigs)| SignedTransaction::new(tx, sigs.into_iter().map(Bytes::from).collect()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// spec: ENC-1, ENC-2: decode ∘ encode = id for every transaction that fits.
    #[test]
    fn tx_encoding_round_trips(tx in arb_tx()) {
        let bytes = tx.encode();
        match Transaction::decode(&bytes) {
            Ok(back) => prop_assert_eq!(back, tx),
            Err(e) => {
                prop_assert!(bytes.len() > MAX_TX_BYTES, "rejected a fitting encoding: {e}");
                prop_assert_eq!(e.code(), "TooLarge");
            }
        }
    }

    #[test]
    fn signed_tx_encoding_round_trips(signed in arb_signed()) {
        let bytes = signed.encode();
        if let Ok(back) = SignedTransaction::decode(&bytes) {
            prop_assert_eq!(back, signed);
        }
    }

    /// No byte string panics the decoders, and whatever decodes re-encodes to the same bytes
    /// (one value, one encoding) and survives the stateless check and signer recovery.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        if let Ok(tx) = Transaction::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes.clone());
            let _ = tx.check();
        }
        if let Ok(signed) = SignedTransaction::decode(&bytes) {
            prop_assert_eq!(signed.encode(), bytes);
            let _ = signed.transaction.check();
            let _ = signed.recover_signers(&vector_domain());
        }
    }

    /// Mutations of valid encodings (the inputs that get deep into the decoder) either decode to
    /// the canonical form or are refused with a typed error.
    #[test]
    fn mutated_encodings_are_canonical_or_refused(
        tx in arb_tx(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut bytes = tx.encode();
        if bytes.is_empty() { return Ok(()); }
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        if let Ok(back) = Transaction::decode(&bytes) {
            prop_assert_eq!(back.encode(), bytes);
        }
    }
}

/// One random attempt at a transfer, valid or not.
#[derive(Clone, Debug)]
struct Attempt {
    inputs: Vec<prop::sample::Index>,
    signer_ok: bool,
    wrong_key: u64,
    outputs: Vec<(u64, bool, u64)>, // (owner key, token?, amount)
    duplicate: bool,
}

fn arb_attempt() -> impl Strategy<Value = Attempt> {
    (
        prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        prop::bool::weighted(0.8),
        0u64..4,
        prop::collection::vec((0u64..4, any::<bool>(), 1u64..120), 1..4),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(inputs, signer_ok, wrong_key, outputs, duplicate)| Attempt {
            inputs,
            signer_ok,
            wrong_key,
            outputs,
            duplicate,
        })
}

const TOKEN: Address = Address::repeat_byte(0x70);

fn token(is_token: bool) -> Address {
    if is_token { TOKEN } else { Address::ZERO }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// spec: LEDGER-3, LEDGER-6: however the block is made, the ledger never creates value:
    /// per token, what is left plus the fees collected equals what there was, the fee
    /// transaction claims no more than was collected, and a refused transaction changes nothing.
    #[test]
    fn ledger_never_creates_value(
        seed in prop::collection::vec((0u64..4, any::<bool>(), 1u64..100), 1..12),
        attempts in prop::collection::vec(arb_attempt(), 1..16),
        fee_claim in 0u64..50,
    ) {
        let domain = vector_domain();
        let keys: Vec<_> = (0..4).map(test_key).collect();
        let mut state = UtxoSet::new();
        let created: Vec<(UtxoPos, Output)> = seed
            .iter()
            .enumerate()
            .map(|(i, (k, t, a))| {
                (UtxoPos::new(1000, i as u16, 0).unwrap(), Output::new(keys[*k as usize].address(), token(*t), U256::from(*a)))
            })
            .collect();
        state.apply(&BlockDiff { created, ..BlockDiff::default() });
        let before = state.totals();
        let owned: Vec<(UtxoPos, Output)> = state.iter().map(|(p, o)| (*p, o.clone())).collect();

        let mut builder = BlockBuilder::new(&state, 2000).unwrap();
        let mut accepted = Vec::new();
        for a in &attempts {
            // Inputs: picked among the initial outputs and the outputs of accepted txs.
            let mut pool = owned.clone();
            for (ti, s) in accepted.iter().enumerate() {
                let s: &SignedTransaction = s;
                for (oi, o) in s.transaction.outputs.iter().enumerate() {
                    pool.push((UtxoPos::new(2000, ti as u16, oi as u8).unwrap(), o.clone()));
                }
            }
            let mut inputs: Vec<(UtxoPos, Output)> = a.inputs.iter().map(|i| pool[i.index(pool.len())].clone()).collect();
            if !a.duplicate { inputs.dedup_by_key(|(p, _)| *p); }
            let outputs = a.outputs.iter().map(|(k, t, amt)| Output::new(keys[*k as usize].address(), token(*t), U256::from(*amt))).collect();
            let positions: Vec<UtxoPos> = inputs.iter().map(|(p, _)| *p).collect();
            let tx = Transaction::payment(&positions, outputs, B256::ZERO);
            let sigs = inputs
                .iter()
                .map(|(_, o)| {
                    let key = if a.signer_ok {
                        keys.iter().find(|k| k.address() == o.owner).unwrap()
                    } else {
                        &keys[a.wrong_key as usize]
                    };
                    key.sign_tx(&domain, &tx)
                })
                .collect();
            let signed = SignedTransaction::new(tx, sigs);
            let len = builder.len();
            let fees = builder.fees().clone();
            match builder.push_signed(&signed, &domain) {
                Ok(()) => accepted.push(signed),
                Err(_) => {
                    prop_assert_eq!(builder.len(), len);
                    prop_assert_eq!(builder.fees(), &fees);
                }
            }
        }
        // A fee claim: accepted only if within what was collected.
        let collected_eth = builder.fees().get(Address::ZERO);
        if fee_claim > 0 {
            let fee = Transaction::fee(vec![Output::new(keys[0].address(), Address::ZERO, U256::from(fee_claim))]);
            match builder.push_fee(&fee) {
                Ok(()) => {
                    prop_assert!(U256::from(fee_claim) <= collected_eth);
                    accepted.push(SignedTransaction::new(fee, vec![]));
                }
                Err(e) => {
                    let is_fee_error = matches!(e, LedgerError::FeeExceedsCollected { .. });
                    prop_assert!(is_fee_error, "unexpected {e}");
                }
            }
        }
        let diff = builder.finish();

        // The accepted transactions form a block that validates as a whole to the same diff.
        let whole = validate_child_block(&state, 2000, &accepted, &domain).unwrap();
        prop_assert_eq!(&whole, &diff);

        let mut after = state.clone();
        after.apply(&diff);
        for (tok, total_before) in &before {
            let total_after = after.totals().into_iter().find(|(t, _)| t == tok).map_or(U256::ZERO, |(_, v)| v);
            let burned = diff.fees.get(*tok);
            let reissued = diff.fees_claimed.get(*tok);
            prop_assert!(reissued <= burned);
            prop_assert_eq!(total_after + burned - reissued, *total_before);
        }
        // No token appears from nothing.
        for (tok, _) in after.totals() {
            prop_assert!(before.iter().any(|(t, _)| *t == tok));
        }
    }
}

/// The naive ledger the builder is checked against: one sequential pass over a plain map, no
/// indexes, written from the rules (LEDGER-1..LEDGER-6, TX-5) and not from the builder.
struct NaiveBlock {
    blknum: u64,
    state: std::collections::BTreeMap<UtxoPos, Output>,
    spent: std::collections::BTreeSet<UtxoPos>,
    made: Vec<UtxoPos>,
    fees: std::collections::BTreeMap<Address, U256>,
    txs: u16,
}

impl NaiveBlock {
    /// `Ok` and the change, or which rule the transaction breaks (the error's variant).
    fn push(&mut self, tx: &Transaction, signers: &[Address]) -> Result<(), &'static str> {
        let inputs = tx
            .check()
            .map_err(|e| match e {
                plasma_spec::TxError::AmountOverflow { .. } => "overflow",
                _ => "tx",
            })?
            .1;
        if signers.len() != inputs.len() {
            return Err("signatures");
        }
        let mut ins: std::collections::BTreeMap<Address, U256> = Default::default();
        for (pos, signer) in inputs.iter().zip(signers) {
            if self.spent.contains(pos) {
                return Err("DoubleSpend");
            }
            let out = self.state.get(pos).ok_or("InputNotFound")?;
            if out.owner != *signer {
                return Err("WrongSigner");
            }
            let sum = ins.entry(out.token).or_default();
            *sum = sum.checked_add(out.amount).ok_or("overflow")?;
        }
        let mut outs: std::collections::BTreeMap<Address, U256> = Default::default();
        for o in &tx.outputs {
            let sum = outs.entry(o.token).or_default();
            *sum = sum.checked_add(o.amount).ok_or("overflow")?;
        }
        if outs.iter().any(|(t, o)| *o > ins.get(t).copied().unwrap_or_default()) {
            return Err("ValueCreated");
        }
        let mut fees = self.fees.clone();
        for (token, i) in &ins {
            let sum = fees.entry(*token).or_default();
            *sum = sum
                .checked_add(*i - outs.get(token).copied().unwrap_or_default())
                .ok_or("overflow")?;
        }
        self.fees = fees;
        for pos in &inputs {
            self.state.remove(pos);
            self.spent.insert(*pos);
        }
        for (i, o) in tx.outputs.iter().enumerate() {
            let pos = UtxoPos::new(self.blknum, self.txs, i as u8).expect("a valid position");
            self.state.insert(pos, o.clone());
            self.made.push(pos);
        }
        self.txs += 1;
        Ok(())
    }
}

/// The variant of a builder's refusal, in the naive ledger's words.
fn refusal(e: &LedgerError) -> &'static str {
    match e {
        LedgerError::DoubleSpend { .. } => "DoubleSpend",
        LedgerError::InputNotFound { .. } => "InputNotFound",
        LedgerError::WrongSigner { .. } => "WrongSigner",
        LedgerError::ValueCreated { .. } => "ValueCreated",
        LedgerError::Tx(plasma_spec::TxError::AmountOverflow { .. }) => "overflow",
        LedgerError::Tx(_) => "tx",
        _ => "other",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Differential (#19: the builder finds the block's own outputs by position, not by map):
    /// random payments — chains inside the block, double spends, duplicate inputs, wrong
    /// signers, value creation, amounts near 2^256 so that input, output and block fee sums
    /// overflow — pushed into the builder and into a naive sequential ledger give the same
    /// verdict for every transaction and the same diff (spent outputs sorted, unspent created
    /// outputs in block order, fees).
    #[test]
    fn the_builder_agrees_with_a_naive_sequential_ledger(
        seed in prop::collection::vec((0u64..4, any::<bool>(), 1u64..100, prop::bool::weighted(0.2)), 1..12),
        attempts in prop::collection::vec((arb_attempt(), prop::bool::weighted(0.15)), 1..24),
    ) {
        let keys: Vec<_> = (0..4).map(test_key).collect();
        let huge = |big: bool, a: u64| if big { U256::MAX - U256::from(a) } else { U256::from(a) };
        let base: Vec<(UtxoPos, Output)> = seed
            .iter()
            .enumerate()
            .map(|(i, (k, t, a, big))| {
                (UtxoPos::new(1000, i as u16, 0).unwrap(), Output::new(keys[*k as usize].address(), token(*t), huge(*big, *a)))
            })
            .collect();
        let mut state = UtxoSet::new();
        state.apply(&BlockDiff { created: base.clone(), ..BlockDiff::default() });
        let mut builder = BlockBuilder::new(&state, 2000).unwrap();
        let mut naive = NaiveBlock {
            blknum: 2000,
            state: base.iter().cloned().collect(),
            spent: Default::default(),
            made: Vec::new(),
            fees: Default::default(),
            txs: 0,
        };
        // Every position a transaction may name: the base, each output made so far (spent or
        // not, so that double spends of the block's own outputs are tried too), one past each
        // transaction's last output, and a transaction not made yet.
        let mut names: Vec<(UtxoPos, Address)> = base.iter().map(|(p, o)| (*p, o.owner)).collect();
        for (a, big_out) in &attempts {
            let pool = names.clone();
            let mut inputs: Vec<(UtxoPos, Address)> = a.inputs.iter().map(|i| pool[i.index(pool.len())]).collect();
            if !a.duplicate { inputs.dedup_by_key(|(p, _)| *p); }
            if a.wrong_key == 3 && a.duplicate {
                inputs[0].0 = UtxoPos::new(2000, naive.txs + 1, 0).unwrap();
            }
            let outputs: Vec<Output> = a.outputs.iter().map(|(k, t, amt)| Output::new(keys[*k as usize].address(), token(*t), huge(*big_out, *amt))).collect();
            let positions: Vec<UtxoPos> = inputs.iter().map(|(p, _)| *p).collect();
            let tx = Transaction::payment(&positions, outputs.clone(), B256::ZERO);
            let signers: Vec<Address> = inputs
                .iter()
                .map(|(_, owner)| if a.signer_ok { *owner } else { keys[a.wrong_key as usize].address() })
                .collect();
            let expected = naive.push(&tx, &signers);
            let got = builder.push_payment(&tx, &signers);
            prop_assert_eq!(got.as_ref().map(drop).map_err(refusal), expected, "tx {:?}", tx);
            if expected.is_ok() {
                for (i, o) in outputs.iter().enumerate() {
                    names.push((UtxoPos::new(2000, naive.txs - 1, i as u8).unwrap(), o.owner));
                }
                // One past its last output: a position the block never made.
                let past = UtxoPos::new(2000, naive.txs - 1, outputs.len() as u8).unwrap();
                names.push((past, outputs[0].owner));
            }
        }
        let diff = builder.finish();
        let mut spent: Vec<UtxoPos> = naive.spent.iter().copied().filter(|p| p.blknum() != 2000).collect();
        spent.sort_unstable();
        prop_assert_eq!(&diff.spent, &spent);
        let created: Vec<(UtxoPos, Output)> = naive
            .made
            .iter()
            .filter_map(|p| naive.state.get(p).map(|o| (*p, o.clone())))
            .collect();
        prop_assert_eq!(&diff.created, &created);
        let fees: Vec<(Address, U256)> = naive.fees.iter().filter(|(_, f)| !f.is_zero()).map(|(t, f)| (*t, *f)).collect();
        let mut got_fees: Vec<(Address, U256)> = diff.fees.iter().filter(|(_, f)| !f.is_zero()).collect();
        got_fees.sort();
        prop_assert_eq!(got_fees, fees);
    }
}
