//! A recipient's in-flight exit (spec: EXIT-6, EXIT-7, EXIT-8, WALLET-3, WALLET-5).
//!
//! The sender of a payment holds everything an in-flight exit needs: the signed payment and,
//! per input, the transaction that created it, its position, its inclusion proof and its block's
//! L1 timestamp. The recipient holds none of it: if the operator withholds the payment's block
//! (or never includes it), the recipient cannot sync the output and cannot exit it by a
//! standard exit. [`Wallet::payment_package`] is what the sender hands over (JSON);
//! [`Wallet::start_in_flight_exit_from`] is what the recipient does with it.
//!
//! How the protocol pays the recipient: only piggybacked items are ever paid (EXIT-8), and a
//! canonical verdict pays the piggybacked *outputs* (EXIT-11). So the recipient, a party as the
//! owner of an output (EXIT-6), starts the exit and piggybacks each of its own outputs in the
//! same breath (phase 1 is half a period, EXIT-7). If a party already started the exit and
//! phase 1 is still open, the recipient only piggybacks.
//!
//! Nothing in a package is trusted: every input is proven under its L1 block commitment, every
//! signature must recover to the owner of the output its input spends (SIG-4), the payment must
//! create no value (EXIT-6) and must pay this wallet, and the L1 state must leave the exit able
//! to pay (no input finalized or standard-exiting, CHAL-5). Only then is a bond paid.
//!
//! A package can be all of that and still a trap: its sender may have spent an input already,
//! in another transaction in a committed block, and handed over a second payment of it (a
//! double spend). Its in-flight exit is then marked non-canonical by anyone holding the older
//! spend (CHAL-1: any watcher can); at settlement (EXIT-11) its outputs are not paid, half the
//! exit bond goes to the challenger and half is burned, and each piggyback bond comes back only
//! less the processing bounty (half, BOND-1). The sender risks nothing. So, before any bond,
//! every source the wallet reads (the operator, then its towers, DA-12) is asked whether it
//! still lists each input unspent; when one does not, the committed child blocks from the
//! input's on are read (each checked against its L1 commitment) for the transaction that spent
//! it. A spend by any other transaction is refused ([`SdkError::BadPackage`], naming the
//! transaction and its block; `force` does not override proven evidence). When no source
//! answers at all the check cannot be made, and only `force` goes ahead. What could not be
//! ruled out (the payment unknown to the operator, a spend no served block shows, a source not
//! asked) is reported in [`RecipientExit::warnings`]. A source listing an input unspent is no
//! proof (a tower may lag, the operator may lie): it only means no spend was shown.
//!
//! Residual risk, which no check here can remove: a sender colluding with the operator can
//! double-spend in a block the operator withholds (or in one it commits and never serves). No
//! source can show that spend, so this check passes, with the warning that the input is not
//! listed unspent and no served block shows its spend. The exit then competes on canonicity by
//! inclusion time (CHAL-1, CHAL-2): the holder of the competitor marks the exit non-canonical,
//! and only a proof of the payment's inclusion at an older position answers it (CHAL-2). The
//! recipient of a payment in a withheld block has no such proof, so the verdict stands
//! non-canonical: the outputs are unpaid, the exit bond is lost and half of each piggyback bond
//! — what the sender's signature on a second spend always allows (CHAL-1 accepts a competitor
//! that was never included, too), since an in-flight exit guards a recipient against the
//! operator, not against its sender. Take in-flight payments only from senders trusted not to
//! sign a second spend, or for amounts worth that risk.

use super::{Wallet, l1, mined};
use crate::error::SdkError;
use alloy::{
    primitives::{Address, B256, Bytes, TxHash, U256, keccak256},
    providers::Provider,
    sol_types::SolValue,
};
use plasma_contracts::InFlightExitGame;
use plasma_spec::{
    CHILD_BLOCK_INTERVAL, MAX_OUTPUTS, MAX_TXS_PER_BLOCK, Proof, SignedTransaction, SigningDomain,
    TokenSums, Transaction, TxType, UtxoPos, leaf_hash,
};
use serde::{Deserialize, Serialize};

/// The version of [`PaymentPackage`] this wallet writes and reads.
pub const PAYMENT_PACKAGE_VERSION: u32 = 1;

/// What a sender hands a recipient so that the recipient can exit the payment in flight
/// ([`Wallet::start_in_flight_exit_from`]): the signed payment and, per input, what proves the
/// output it spends under L1. Serialized as JSON (camelCase; positions as decimal strings, bytes
/// as 0x-hex). It holds no secret: the signatures in it are already the payment's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentPackage {
    /// [`PAYMENT_PACKAGE_VERSION`].
    pub version: u32,
    /// The L1 chain id of the deployment (EIP-712 domain).
    pub chain_id: u64,
    /// The framework contract (EIP-712 verifying contract).
    pub framework: Address,
    /// The payment's hash (its in-flight exit id).
    pub tx_hash: B256,
    /// The signed payment, wire encoding (ENC-4).
    pub signed_tx: Bytes,
    /// One per input, in input order.
    pub inputs: Vec<PackageInput>,
}

/// One input of a [`PaymentPackage`]: the output it spends, proven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageInput {
    /// The spent output's position (decimal).
    pub utxo_pos: String,
    /// The transaction that created it (ENC-1).
    pub tx_bytes: Bytes,
    /// Its inclusion proof (MERKLE-5, 512 bytes).
    pub proof: Bytes,
    /// The L1 timestamp of its block (MERKLE-6).
    pub block_timestamp: u64,
}

/// What [`Wallet::in_flight_exit_from`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientExit {
    /// The exit (the payment's hash).
    pub exit_id: B256,
    /// The L1 transaction that started it; `None` when a party had started it already and this
    /// wallet only piggybacked.
    pub start_tx: Option<TxHash>,
    /// This wallet's outputs piggybacked: output index and L1 transaction.
    pub piggybacks: Vec<(u8, TxHash)>,
    /// What those outputs are worth, per token, if the exit settles canonical.
    pub amounts: Vec<(Address, U256)>,
    /// Bonds paid: the exit bond (if started here) and one piggyback bond per output.
    pub bonds: U256,
    /// When the exit can be processed (unix seconds, read from L1; EXIT-7).
    pub exitable_at: u64,
    /// What the checks could not rule out (the payment unknown to the operator, an input no
    /// source lists unspent whose spend no served block shows, a source that could not be
    /// asked): each a risk to the bonds, see the module doc.
    pub warnings: Vec<String>,
}

/// How many committed child blocks after an input are read, at most, for the transaction that
/// spent it (each is downloaded and checked against L1). A spend beyond that is not found: said
/// in [`RecipientExit::warnings`].
const MAX_SPEND_SCAN_BLOCKS: u64 = 2_000;

/// A package checked without L1: the payment, its inputs and what they spend.
#[derive(Debug)]
struct Checked {
    signed: SignedTransaction,
    positions: Vec<UtxoPos>,
    /// Per input: its block, the root its proof gives, its block timestamp, its output id.
    roots: Vec<(u64, B256, u64, B256)>,
    /// This wallet's outputs of the payment.
    mine: Vec<u8>,
    /// Per input: the owner of the output it spends.
    owners: Vec<Address>,
}

fn bad(reason: impl Into<String>) -> SdkError {
    SdkError::BadPackage(reason.into())
}

/// Everything a package must satisfy that needs no L1: the contract's own start checks
/// (EXIT-6: a payment, one proven input per input, signatures of the spent outputs' owners,
/// no value created) and that it pays `me`. The roots are checked against L1 afterwards.
fn check(pkg: &PaymentPackage, domain: &SigningDomain, me: Address) -> Result<Checked, SdkError> {
    if pkg.version != PAYMENT_PACKAGE_VERSION {
        return Err(bad(format!(
            "version {} (this wallet reads {PAYMENT_PACKAGE_VERSION})",
            pkg.version
        )));
    }
    let d = domain.domain();
    let (chain_id, framework) =
        (d.chain_id.map_or(0, |c| c.to::<u64>()), d.verifying_contract.unwrap_or_default());
    if (pkg.chain_id, pkg.framework) != (chain_id, framework) {
        return Err(bad(format!(
            "it is for chain {} framework {}, this wallet is on chain {chain_id} framework \
             {framework}",
            pkg.chain_id, pkg.framework
        )));
    }
    let signed = SignedTransaction::decode(&pkg.signed_tx)
        .map_err(|e| bad(format!("the signed payment does not decode: {e}")))?;
    let tx = &signed.transaction;
    if tx.hash() != pkg.tx_hash {
        return Err(bad(format!("the payment's hash is {}, not {}", tx.hash(), pkg.tx_hash)));
    }
    let (kind, positions) = tx.check().map_err(|e| bad(format!("malformed payment: {e}")))?;
    if kind != TxType::Payment {
        return Err(bad("only payments exit in flight (EXIT-6)"));
    }
    if pkg.inputs.len() != positions.len() {
        return Err(bad(format!(
            "{} inputs given for a payment of {} inputs",
            pkg.inputs.len(),
            positions.len()
        )));
    }
    let signers = signed.recover_signers(domain).map_err(|e| bad(format!("signature: {e}")))?;
    let mut roots = Vec::new();
    let mut owners = Vec::new();
    let mut sums = TokenSums::default();
    for (i, (input, pos)) in pkg.inputs.iter().zip(&positions).enumerate() {
        if input.utxo_pos != pos.to_u128().to_string() {
            return Err(bad(format!(
                "input {i} is given at {}, the payment spends {}",
                input.utxo_pos,
                pos.to_u128()
            )));
        }
        let in_tx = Transaction::decode(&input.tx_bytes)
            .map_err(|e| bad(format!("input {i}'s transaction does not decode: {e}")))?;
        let (in_kind, _) =
            in_tx.check().map_err(|e| bad(format!("input {i}'s transaction: {e}")))?;
        // EXIT-1: deposits only from deposit blocks, everything else only from child blocks.
        if pos.is_deposit() != (in_kind == TxType::Deposit) {
            return Err(bad(format!(
                "input {i}: a {in_kind:?} transaction in block {}",
                pos.blknum()
            )));
        }
        let out = in_tx
            .outputs
            .get(usize::from(pos.output_index()))
            .cloned()
            .ok_or_else(|| bad(format!("input {i}: its transaction has no such output")))?;
        // spec: SIG-4 — signed by the owner of the output it spends.
        if signers.get(i) != Some(&out.owner) {
            return Err(bad(format!(
                "input {i} is signed by {}, not by its owner {}",
                signers.get(i).copied().unwrap_or_default(),
                out.owner
            )));
        }
        let proof =
            Proof::from_bytes(&input.proof).map_err(|e| bad(format!("input {i}'s proof: {e}")))?;
        let root = proof
            .compute_root(leaf_hash(&input.tx_bytes), usize::from(pos.tx_index()))
            .map_err(|e| bad(format!("input {i}'s proof: {e}")))?;
        sums.add(out.token, out.amount).map_err(|e| bad(format!("input sums: {e}")))?;
        owners.push(out.owner);
        roots.push((
            pos.blknum(),
            root,
            input.block_timestamp,
            in_tx.output_id(pos.output_index(), *pos),
        ));
    }
    let outputs = tx.output_sums().map_err(|e| bad(e.to_string()))?;
    for (token, out) in outputs.iter() {
        if out > sums.get(token) {
            return Err(bad(format!(
                "it creates value in token {token}: inputs {}, outputs {out} (EXIT-6 refuses it)",
                sums.get(token)
            )));
        }
    }
    let mine: Vec<u8> = tx
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.owner == me)
        .filter_map(|(j, _)| u8::try_from(j).ok())
        .collect();
    if mine.is_empty() {
        return Err(bad(format!("it pays {me} nothing: this wallet owns none of its outputs")));
    }
    Ok(Checked { signed, positions, roots, mine, owners })
}

/// The greatest valid position below `pos` (the listing's `after` cursor must be one), `None`
/// for the first position of all.
fn position_before(pos: UtxoPos) -> Option<u128> {
    let (blknum, tx_index, output_index) = (pos.blknum(), pos.tx_index(), pos.output_index());
    let last_output = u8::try_from(MAX_OUTPUTS - 1).unwrap_or(u8::MAX);
    let before = if output_index > 0 {
        UtxoPos::new(blknum, tx_index, output_index - 1)
    } else if tx_index > 0 {
        UtxoPos::new(blknum, tx_index - 1, last_output)
    } else {
        let last_tx = u16::try_from(MAX_TXS_PER_BLOCK - 1).unwrap_or(u16::MAX);
        UtxoPos::new(blknum.checked_sub(1)?, last_tx, last_output)
    };
    before.ok().map(|p| p.to_u128())
}

impl Wallet {
    /// What a sender hands a recipient (spec: EXIT-6): the signed payment `hash` this wallet
    /// sent ([`Wallet::sent_transaction`]) and, per input, its creating transaction, position,
    /// inclusion proof and block timestamp, from the local store alone (no operator, no L1).
    /// [`SdkError::UnknownOutput`] if the payment or an input is not stored.
    pub fn payment_package(&self, hash: B256) -> Result<PaymentPackage, SdkError> {
        let signed = self.sent_transaction(hash)?;
        let positions =
            signed.transaction.input_positions().map_err(|e| SdkError::Store(e.to_string()))?;
        let inputs = positions
            .iter()
            .map(|p| {
                let o = self.stored(p.to_u128())?;
                Ok(PackageInput {
                    utxo_pos: o.utxo_pos.to_string(),
                    tx_bytes: o.tx_bytes,
                    proof: o.proof,
                    block_timestamp: o.block_timestamp,
                })
            })
            .collect::<Result<Vec<_>, SdkError>>()?;
        Ok(PaymentPackage {
            version: PAYMENT_PACKAGE_VERSION,
            chain_id: self.domain_chain_id(),
            framework: *self.framework.address(),
            tx_hash: hash,
            signed_tx: signed.encode().into(),
            inputs,
        })
    }

    /// Starts the in-flight exit of a payment to this wallet from the sender's package and
    /// piggybacks this wallet's outputs of it (see [`Wallet::in_flight_exit_from`]); returns the
    /// L1 transaction that started it, or, when a party had started it already, the last
    /// piggyback (there is one: a join that adds nothing is
    /// [`SdkError::InFlightExitExists`]).
    pub async fn start_in_flight_exit_from(
        &self,
        pkg: &PaymentPackage,
    ) -> Result<TxHash, SdkError> {
        let done = self.in_flight_exit_from(pkg, false).await?;
        done.start_tx
            .or_else(|| done.piggybacks.last().map(|(_, tx)| *tx))
            .ok_or(SdkError::InFlightExitExists(done.exit_id))
    }

    /// A recipient's in-flight exit (spec: EXIT-6, EXIT-8). Checks, before any bond is paid:
    /// the package itself ([`SdkError::BadPackage`]: the contract's start checks, and that the
    /// payment pays this wallet); each input's root and timestamp against its L1 block
    /// commitment; that no input is finalized ([`SdkError::OutputFinalized`]) or
    /// standard-exiting ([`SdkError::OutputExiting`]) on L1 (either can make the exit
    /// non-canonical, CHAL-5, and its outputs unpaid); that no input is spent by another
    /// transaction in a committed block the sources serve ([`SdkError::BadPackage`]: a double
    /// spend, CHAL-1, see the module doc), refusing unless `force` when no source can be asked;
    /// and, unless `force`, WALLET-3 (the payment
    /// proven committed in a block served whole and unsuspected is
    /// [`SdkError::PaymentCommitted`]: sync and exit the output by a standard exit). Then starts
    /// the exit with its bond, unless a party started it and phase 1 is still open (joined), and
    /// piggybacks every output of the payment this wallet owns: only piggybacked outputs are
    /// paid (EXIT-8, EXIT-11). An exit settled, open past phase 1, or open with this wallet's
    /// outputs piggybacked already is [`SdkError::InFlightExitExists`].
    pub async fn in_flight_exit_from(
        &self,
        pkg: &PaymentPackage,
        force: bool,
    ) -> Result<RecipientExit, SdkError> {
        let checked = check(pkg, &self.domain, self.address())?;
        let exit_id = U256::from_be_bytes(pkg.tx_hash.0);
        for (i, (blknum, root, ts, output_id)) in checked.roots.iter().enumerate() {
            let commitment =
                self.framework.blockCommitments(U256::from(*blknum)).call().await.map_err(l1)?;
            if commitment == B256::ZERO {
                return Err(bad(format!("input {i}'s block {blknum} is not committed on L1")));
            }
            if commitment != keccak256((*root, U256::from(*ts)).abi_encode()) {
                return Err(bad(format!(
                    "input {i}'s proof and timestamp do not match block {blknum}'s L1 commitment"
                )));
            }
            // CHAL-5, EXIT-11: a finalized input makes the exit non-canonical, its outputs unpaid.
            let pos = checked.positions[i].to_u128();
            if self.framework.isOutputFinalized(*output_id).call().await.map_err(l1)? {
                return Err(SdkError::OutputFinalized(pos.to_string()));
            }
            if self.standard.exits(U256::from(pos)).call().await.map_err(l1)?.status == 1 {
                return Err(SdkError::OutputExiting {
                    utxo_pos: pos.to_string(),
                    evidence: format!(
                        "input {i}'s standard exit is active on L1: processed first, it would \
                         make the payment non-canonical; challenge it with this payment (EXIT-4: \
                         a spend its owner signed), then start the in-flight exit"
                    ),
                });
            }
        }
        // spec: CHAL-1 — a double spend of a committed input loses every bond paid below.
        let mut warnings = self.spends_of_inputs(pkg, &checked, force).await?;
        warnings.extend(self.payment_known(pkg.tx_hash).await);
        for w in &warnings {
            tracing::warn!(exit = %pkg.tx_hash, warning = %w, "in-flight exit from a package");
        }
        let existing = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        let joined = existing.initiator != Address::ZERO && existing.verdict != 3;
        if joined {
            let period = self.framework.minExitPeriod().call().await.map_err(l1)?;
            let phase_end = U256::from(existing.startedAt) + period / U256::from(2);
            let now = self.l1_now().await?;
            if existing.verdict != 0 || U256::from(now) >= phase_end {
                return Err(SdkError::InFlightExitExists(pkg.tx_hash));
            }
            tracing::info!(exit = %pkg.tx_hash, "a party started this in-flight exit: piggybacking only");
        } else if !force
            && let Some((blknum, tx_index)) =
                self.proven_inclusion(&checked.signed.transaction).await?
            && self.block_is_available_and_unsuspected(blknum).await?
        {
            // spec: WALLET-3
            return Err(SdkError::PaymentCommitted { tx_hash: pkg.tx_hash, blknum, tx_index });
        }
        let mut bonds = U256::ZERO;
        let start_tx = if joined {
            None
        } else {
            let args = InFlightExitGame::StartArgs {
                inFlightTx: checked.signed.transaction.encode().into(),
                inputTxs: pkg.inputs.iter().map(|i| i.tx_bytes.clone()).collect(),
                inputUtxoPos: checked.positions.iter().map(UtxoPos::to_u256).collect(),
                inputProofs: pkg.inputs.iter().map(|i| i.proof.clone()).collect(),
                inputBlockTimestamps: pkg.inputs.iter().map(|i| i.block_timestamp).collect(),
                signatures: checked.signed.signatures.clone(),
            };
            let bond = self.in_flight.inFlightExitBond().call().await.map_err(l1)?;
            let sent = self.in_flight.startInFlightExit(args).value(bond).send().await;
            let receipt = mined(sent, "startInFlightExit").await?;
            bonds += bond;
            tracing::info!(exit = %pkg.tx_hash, l1_tx = %receipt.transaction_hash, %bond, "recipient started the in-flight exit");
            Some(receipt.transaction_hash)
        };
        let state = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        let mut piggybacks = Vec::new();
        let mut amounts = TokenSums::default();
        for &j in &checked.mine {
            let out = &checked.signed.transaction.outputs[usize::from(j)];
            amounts.add(out.token, out.amount).map_err(|e| SdkError::L1(e.to_string()))?;
            if state.piggybacks & (1 << (5 + u16::from(j))) != 0 {
                continue; // already piggybacked (by an exitor this wallet authorized)
            }
            let sent = self
                .in_flight
                .piggybackOutput(exit_id, j)
                .value(state.piggybackBondAmount)
                .send()
                .await;
            let receipt = mined(sent, "piggybackOutput").await?;
            bonds += state.piggybackBondAmount;
            tracing::info!(exit = %pkg.tx_hash, output = j, l1_tx = %receipt.transaction_hash, "piggybacked");
            piggybacks.push((j, receipt.transaction_hash));
        }
        if joined && piggybacks.is_empty() {
            // Started already, this wallet's outputs piggybacked already: nothing to add.
            return Err(SdkError::InFlightExitExists(pkg.tx_hash));
        }
        // Nothing is kept locally: the exit is found again by its events (`exit_schedule`, and
        // the re-check's piggyback scan once the output is synced).
        Ok(RecipientExit {
            exit_id: pkg.tx_hash,
            start_tx,
            piggybacks,
            amounts: amounts.iter().collect(),
            bonds,
            exitable_at: state.exitableAt,
            warnings,
        })
    }

    /// Whether the sender already spent an input of the package elsewhere (spec: CHAL-1). Asks
    /// every source whether it still lists each input unspent (one page of the owner's listing
    /// from the input on); for an input some source leaves out, reads the committed child blocks
    /// from the input's on (each proven against L1, [`Wallet::proven_block`]) for the
    /// transaction that spends it. Another transaction spending it is [`SdkError::BadPackage`]
    /// (force or not: the evidence is proven); no source answering for an input is
    /// [`SdkError::BadPackage`] unless `force`. Returns what could not be ruled out.
    async fn spends_of_inputs(
        &self,
        pkg: &PaymentPackage,
        checked: &Checked,
        force: bool,
    ) -> Result<Vec<String>, SdkError> {
        let mut warnings = Vec::new();
        let next_child = self.framework.nextChildBlock().call().await.map_err(l1)?;
        let last_child = next_child.saturating_sub(CHILD_BLOCK_INTERVAL);
        for (i, (pos, owner)) in checked.positions.iter().zip(&checked.owners).enumerate() {
            let p = pos.to_u128();
            let what = format!("whether output {p} is unspent");
            let (mut listed, mut unlisted, mut failed) = (Vec::new(), Vec::new(), Vec::new());
            for (s, id, client) in self.sources.iter() {
                match client.utxo_page(*owner, position_before(*pos), 1, false).await {
                    Ok(page) if page.utxos.first().is_some_and(|u| u.utxo_pos == p) => {
                        self.sources.note_served(s, &what);
                        listed.push(id.to_string());
                    }
                    Ok(_) => {
                        self.sources.note_served(s, &what);
                        unlisted.push(id.to_string());
                    }
                    Err(e) => {
                        let attempt = self.sources.note_failure(s, &what, &e);
                        failed.push(attempt.to_string());
                    }
                }
            }
            if listed.is_empty() && unlisted.is_empty() {
                let why = format!(
                    "input {i} (output {p}): no source could say whether the sender already spent \
                     it ({}); a double spend would lose the exit and piggyback bonds (CHAL-1)",
                    failed.join("; ")
                );
                if !force {
                    return Err(bad(format!(
                        "{why}; the check could not be made (force to go on)"
                    )));
                }
                warnings.push(why);
                continue;
            }
            if !failed.is_empty() {
                warnings.push(format!(
                    "input {i} (output {p}): not every source could be asked whether it is spent: \
                     {}",
                    failed.join("; ")
                ));
            }
            if unlisted.is_empty() {
                continue; // every source that answered lists it unspent
            }
            // Someone says it is gone: find the spend, proven, or say it was not found.
            let first = pos.blknum().div_ceil(CHILD_BLOCK_INTERVAL) * CHILD_BLOCK_INTERVAL;
            let mut unserved = Vec::new();
            let mut scanned = 0u64;
            let mut found_self = false;
            let mut blknum = first.max(CHILD_BLOCK_INTERVAL);
            while blknum <= last_child && scanned < MAX_SPEND_SCAN_BLOCKS {
                scanned += 1;
                let Some(leaves) = self.proven_block(blknum).await? else {
                    unserved.push(blknum);
                    blknum += CHILD_BLOCK_INTERVAL;
                    continue;
                };
                for (tx_index, leaf) in leaves.iter().enumerate() {
                    let Ok(tx) = Transaction::decode(leaf) else { continue };
                    if !tx.input_positions().is_ok_and(|ins| ins.contains(pos)) {
                        continue;
                    }
                    let spender = tx.hash();
                    if spender == pkg.tx_hash {
                        found_self = true;
                        continue;
                    }
                    tracing::warn!(exit = %pkg.tx_hash, input = i, utxo_pos = p, %spender, blknum,
                        "the package double-spends a committed input: refused before any bond");
                    return Err(bad(format!(
                        "input {i} (output {p}) is already spent by transaction {spender} in \
                         committed block {blknum} (index {tx_index}, proven against its L1 \
                         commitment): this payment is a double spend, and its in-flight exit \
                         would be challenged non-canonical with that transaction (CHAL-1): its \
                         outputs unpaid, the exit bond lost and half of each piggyback bond \
                         (EXIT-11); no bond was paid"
                    )));
                }
                blknum += CHILD_BLOCK_INTERVAL;
            }
            if found_self {
                continue; // spent by the payment itself: WALLET-3 decides below
            }
            let mut why = format!(
                "input {i} (output {p}) is not listed unspent by {} and no served committed block \
                 shows its spend",
                unlisted.join(", ")
            );
            if !unserved.is_empty() {
                let _ = std::fmt::Write::write_fmt(
                    &mut why,
                    format_args!(
                        "; blocks not served (withheld?): {unserved:?} — if the sender spent it \
                         there, the exit loses its bonds to a canonicity challenge (CHAL-1)"
                    ),
                );
            }
            if blknum <= last_child {
                let _ = std::fmt::Write::write_fmt(
                    &mut why,
                    format_args!(
                        "; blocks from {blknum} to {last_child} not read \
                         ({MAX_SPEND_SCAN_BLOCKS} at most)"
                    ),
                );
            }
            warnings.push(why);
        }
        Ok(warnings)
    }

    /// A warning when the operator does not know the payment (the sender may never have
    /// submitted it: nothing then stops a later spend of its inputs), or cannot be asked.
    async fn payment_known(&self, hash: B256) -> Option<String> {
        match self.client.tx_status(hash).await {
            Ok(_) => None,
            Err(SdkError::OperatorRefused { code, .. }) if code == "BlockWithheld" => None,
            Err(SdkError::OperatorRefused { code, .. }) if code == "UnknownTransaction" => {
                Some(format!(
                    "the operator does not know payment {hash}: the sender may never have \
                     submitted it, and can still spend its inputs elsewhere"
                ))
            }
            Err(e) => Some(format!("the operator could not be asked about payment {hash}: {e}")),
        }
    }

    /// The latest L1 block's header.
    pub(super) async fn latest_header(&self) -> Result<alloy::rpc::types::Header, SdkError> {
        Ok(self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .ok_or_else(|| SdkError::L1("no latest block".into()))?
            .header)
    }

    /// The latest L1 block's timestamp: the contracts' `now`.
    pub(super) async fn l1_now(&self) -> Result<u64, SdkError> {
        Ok(self.latest_header().await?.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plasma_spec::{Output, Signer, deposit_block_root};

    fn signer(n: u8) -> Signer {
        Signer::from_bytes(&B256::repeat_byte(n)).unwrap()
    }

    fn domain() -> SigningDomain {
        SigningDomain::new(31337, Address::repeat_byte(0xfa))
    }

    /// Alice's deposit (block 1) paid 7 of 10 to bob, as a package.
    fn package() -> (PaymentPackage, Address, Address) {
        let (alice, bob) = (signer(1), signer(2));
        let deposit = Transaction::deposit(alice.address(), Address::ZERO, U256::from(10));
        let pos = UtxoPos::new(1, 0, 0).unwrap();
        let pay = Transaction::payment(
            &[pos],
            vec![
                Output::new(bob.address(), Address::ZERO, U256::from(7)),
                Output::new(alice.address(), Address::ZERO, U256::from(3)),
            ],
            B256::ZERO,
        );
        let signed = SignedTransaction::new(pay.clone(), vec![alice.sign_tx(&domain(), &pay)]);
        let bytes = deposit.encode();
        assert_ne!(deposit_block_root(&bytes), B256::ZERO);
        let proof = Proof::from_bytes(&vec![0u8; 512]).unwrap();
        let pkg = PaymentPackage {
            version: 1,
            chain_id: 31337,
            framework: Address::repeat_byte(0xfa),
            tx_hash: pay.hash(),
            signed_tx: signed.encode().into(),
            inputs: vec![PackageInput {
                utxo_pos: pos.to_u128().to_string(),
                tx_bytes: bytes.into(),
                proof: proof.to_bytes().into(),
                block_timestamp: 1,
            }],
        };
        (pkg, alice.address(), bob.address())
    }

    #[test]
    fn the_listing_cursor_before_a_position_is_the_position_just_below_it() {
        let at = |b, t, o| UtxoPos::new(b, t, o).unwrap();
        assert_eq!(position_before(at(1, 0, 0)), None);
        assert_eq!(position_before(at(1, 0, 3)), Some(at(1, 0, 2).to_u128()));
        assert_eq!(position_before(at(2000, 7, 0)), Some(at(2000, 6, 4).to_u128()));
        assert_eq!(position_before(at(1001, 0, 0)), Some(at(1000, u16::MAX, 4).to_u128()));
    }

    #[test]
    fn a_sound_package_names_the_recipients_outputs_and_round_trips_as_json() {
        let (pkg, alice, bob) = package();
        let json = serde_json::to_string(&pkg).unwrap();
        assert!(json.contains("\"utxoPos\":\"1000000000\""), "{json}");
        let back: PaymentPackage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pkg);
        let c = check(&pkg, &domain(), bob).unwrap();
        assert_eq!(c.mine, vec![0]);
        assert_eq!(c.positions, vec![UtxoPos::new(1, 0, 0).unwrap()]);
        assert_eq!(check(&pkg, &domain(), alice).unwrap().mine, vec![1]);
    }

    #[test]
    fn a_package_that_does_not_prove_what_it_claims_is_refused() {
        let (pkg, _, bob) = package();
        let refused = |p: &PaymentPackage, me: Address, what: &str| match check(p, &domain(), me) {
            Err(SdkError::BadPackage(why)) => assert!(why.contains(what), "{why}"),
            other => panic!("{what}: {other:?}"),
        };
        refused(&pkg, Address::repeat_byte(9), "pays");
        refused(&PaymentPackage { chain_id: 1, ..pkg.clone() }, bob, "chain 1");
        refused(&PaymentPackage { tx_hash: B256::ZERO, ..pkg.clone() }, bob, "hash");
        refused(&PaymentPackage { version: 2, ..pkg.clone() }, bob, "version");
        let mut wrong_pos = pkg.clone();
        wrong_pos.inputs[0].utxo_pos = "2000000000".into();
        refused(&wrong_pos, bob, "given at");
        let mut short = pkg.clone();
        short.inputs[0].proof = Bytes::from(vec![0u8; 3]);
        refused(&short, bob, "proof");
        // Signed by someone who does not own the input.
        let mut signed = SignedTransaction::decode(&pkg.signed_tx).unwrap();
        signed.signatures[0] = signer(3).sign_tx(&domain(), &signed.transaction);
        refused(
            &PaymentPackage { signed_tx: signed.encode().into(), ..pkg.clone() },
            bob,
            "signed by",
        );
        // Paying out more than the input holds.
        let mut rich = SignedTransaction::decode(&pkg.signed_tx).unwrap();
        rich.transaction.outputs[0].amount = U256::from(8);
        rich.signatures[0] = signer(1).sign_tx(&domain(), &rich.transaction);
        refused(
            &PaymentPackage {
                tx_hash: rich.transaction.hash(),
                signed_tx: rich.encode().into(),
                ..pkg
            },
            bob,
            "creates value",
        );
    }
}
