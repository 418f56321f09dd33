//! The exit game's rules as pure functions (spec: EXIT, CHAL, OUT).
//!
//! The contracts enforce these on L1; the watcher and the SDK call them to decide what to do
//! ("is this exit challengeable, and with what?") without asking L1 first. Times are unix
//! seconds, `period` is the deployment's minimum exit period.

use crate::{
    error::TxError,
    position::UtxoPos,
    signing::{SigningDomain, recover_signer},
    tx::{SignedTransaction, Transaction, TxType},
};
use alloy_primitives::{Address, U256};

/// When a standard exit of the output at `pos` may be processed (spec: EXIT-2).
///
/// A deposit output waits one period from the exit's start; any other output also waits two
/// periods from its block's submission, so exits from a fresh (possibly invalid) block always
/// come after the exits that honest owners of older outputs start within a period of seeing it.
pub fn standard_exit_exitable_at(pos: UtxoPos, now: u64, block_timestamp: u64, period: u64) -> u64 {
    let from_start = now.saturating_add(period);
    if pos.is_deposit() {
        from_start
    } else {
        from_start.max(block_timestamp.saturating_add(period.saturating_mul(2)))
    }
}

/// When an in-flight exit may be processed (spec: EXIT-7): the child-block rule applied to its
/// youngest input, deposit or not, so spending a fresh deposit buys no earlier slot.
pub fn in_flight_exit_exitable_at(
    now: u64,
    youngest_input_block_timestamp: u64,
    period: u64,
) -> u64 {
    now.saturating_add(period)
        .max(youngest_input_block_timestamp.saturating_add(period.saturating_mul(2)))
}

/// The priority of an exit in its token's queue; lower is processed first (spec: EXIT-3).
///
/// `exitableAt << 192 | position << 64 | nonce`, with `position` the exited output's (or the
/// in-flight exit's youngest input's) packed position, below 2^128, and `nonce` a per-queue
/// counter that makes every key unique.
pub fn exit_priority(exitable_at: u64, position: UtxoPos, nonce: u64) -> U256 {
    (U256::from(exitable_at) << 192) | (U256::from(position.to_u128()) << 64) | U256::from(nonce)
}

/// Splits a priority back into `(exitable_at, position, nonce)`.
pub fn split_priority(priority: U256) -> (u64, u128, u64) {
    let limbs = priority.as_limbs(); // little-endian u64 words
    (limbs[3], (u128::from(limbs[2]) << 64) | u128::from(limbs[1]), limbs[0])
}

/// The phase of an in-flight exit (spec: EXIT-7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InFlightPhase {
    /// The first half period after its start: piggybacks and canonicity challenges.
    Piggyback,
    /// After that and before it is exitable: responses and piggyback challenges only.
    Challenge,
    /// Exitable: processing (responses and piggyback challenges still land until then).
    Exitable,
}

/// The phase of an in-flight exit started at `started_at` (spec: EXIT-7).
pub fn in_flight_phase(started_at: u64, exitable_at: u64, now: u64, period: u64) -> InFlightPhase {
    if now >= exitable_at {
        InFlightPhase::Exitable
    } else if now < started_at.saturating_add(period / 2) {
        InFlightPhase::Piggyback
    } else {
        InFlightPhase::Challenge
    }
}

/// Whether an in-flight exit nobody piggybacked may be deleted and its bond returned
/// (spec: EXIT-11): only once the piggyback phase is over.
pub fn can_delete_unpiggybacked(started_at: u64, now: u64, period: u64, piggybacked: bool) -> bool {
    !piggybacked && now >= started_at.saturating_add(period / 2)
}

/// Why a transaction cannot serve as a challenge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The candidate breaks a stateless rule, so it can never spend anything.
    #[error("candidate transaction is invalid: {0}")]
    InvalidCandidate(#[from] TxError),
    /// The candidate does not spend the output in question.
    #[error("candidate does not spend {output}")]
    DoesNotSpend {
        /// The output.
        output: UtxoPos,
    },
    /// The candidate is the in-flight transaction itself.
    #[error("candidate is the in-flight transaction itself")]
    SameTransaction,
    /// The candidate's signature for the shared input is not the owner's.
    #[error("candidate's signature for input {input_index} is not the owner's: {reason}")]
    NotSignedByOwner {
        /// The candidate's input index.
        input_index: usize,
        /// What went wrong.
        reason: String,
    },
    /// The in-flight transaction is not included before the competitor, so it cannot answer.
    #[error("in-flight transaction is not included before the competitor")]
    NotOlder,
    /// A new competitor is not older than what stands (spec: CHAL-1).
    #[error("competitor at {competitor:?} is not older than {standing:?}, which stands")]
    CompetitorNotOlder {
        /// The new competitor's transaction position (`None`: not shown included).
        competitor: Option<u128>,
        /// What stands: the unanswered competitor's position, or the answering inclusion's.
        standing: Option<u128>,
    },
    /// Nothing to answer: no canonicity challenge stands (spec: CHAL-2).
    #[error("no canonicity challenge stands")]
    NotChallenged,
}

/// Which input of a challenging transaction spends the output in question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendProof {
    /// Index of the spending input in the candidate transaction.
    pub input_index: usize,
}

/// Whether `candidate` spends the output at `output` owned by `owner`, validly signed
/// (spec: EXIT-4, CHAL-3, CHAL-4): a stateless-valid payment with the output among its inputs and
/// the owner's signature on that input. Inclusion is not needed: the owner's signature alone
/// proves they gave the output away.
pub fn spends(
    candidate: &SignedTransaction,
    output: UtxoPos,
    owner: Address,
    domain: &SigningDomain,
) -> Result<SpendProof, ChallengeError> {
    let (tx_type, inputs) = candidate.transaction.check()?;
    if tx_type != TxType::Payment {
        return Err(ChallengeError::DoesNotSpend { output });
    }
    let input_index =
        inputs.iter().position(|p| *p == output).ok_or(ChallengeError::DoesNotSpend { output })?;
    let not_signed = |reason: String| ChallengeError::NotSignedByOwner { input_index, reason };
    let sig =
        candidate.signatures.get(input_index).ok_or_else(|| not_signed("no signature".into()))?;
    let signer = recover_signer(domain.tx_digest(&candidate.transaction), sig, input_index)
        .map_err(|e| not_signed(e.to_string()))?;
    if signer != owner {
        return Err(not_signed(format!("signed by {signer}, owned by {owner}")));
    }
    Ok(SpendProof { input_index })
}

/// A competitor that makes an in-flight transaction non-canonical (spec: CHAL-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Competition {
    /// Index, in the in-flight transaction, of the input both spend.
    pub in_flight_input_index: usize,
    /// Index, in the competitor, of that input.
    pub competitor_input_index: usize,
}

/// Whether `candidate` competes with the in-flight transaction `in_flight` (spec: CHAL-1): a
/// different valid payment spending one of its inputs, signed by that input's owner.
/// `input_owners[i]` is the owner of the in-flight transaction's input `i` (from the input
/// transactions the exit was started with).
pub fn competes(
    in_flight: &Transaction,
    input_owners: &[Address],
    candidate: &SignedTransaction,
    domain: &SigningDomain,
) -> Result<Competition, ChallengeError> {
    if candidate.transaction == *in_flight {
        return Err(ChallengeError::SameTransaction);
    }
    let inputs = in_flight.input_positions()?;
    let mut last = None;
    for (in_flight_input_index, (pos, owner)) in inputs.iter().zip(input_owners).enumerate() {
        match spends(candidate, *pos, *owner, domain) {
            Ok(SpendProof { input_index }) => {
                return Ok(Competition {
                    in_flight_input_index,
                    competitor_input_index: input_index,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(ChallengeError::InvalidCandidate(TxError::WrongInputCount {
        tx_type: in_flight.txType,
        count: 0,
    })))
}

/// Whether an in-flight transaction included at `in_flight_tx_pos` answers a canonicity
/// challenge whose oldest competitor is at `competitor_tx_pos` (`None`: not included)
/// (spec: CHAL-2). Positions are transaction positions, `blknum * 1e9 + txIndex * 1e4`.
pub fn answers_competitor(
    in_flight_tx_pos: u128,
    competitor_tx_pos: Option<u128>,
) -> Result<(), ChallengeError> {
    match competitor_tx_pos {
        Some(competitor) if competitor <= in_flight_tx_pos => Err(ChallengeError::NotOlder),
        _ => Ok(()),
    }
}

/// Whether a new canonicity challenge may replace what stands (spec: CHAL-1): only with an older
/// competitor, so a challenger cannot hide an old competitor behind a young one.
///
/// `recorded` is what stands ([`CanonicityGame::standing`]): `None` if never challenged,
/// `Some(None)` for an unanswered competitor not shown included, `Some(Some(p))` for an unanswered
/// competitor at `p` **or**, once a response answered the last competitor, the in-flight
/// transaction's inclusion at `p` that answered it. Never an older position than the last word:
/// comparing a new competitor with an inclusion shown before a newer competitor was accepted lets
/// a younger competitor replace an older one, or the standing challenge be sent again by someone
/// else (issue 12).
pub fn replaces_competitor(recorded: Option<Option<u128>>, new: Option<u128>) -> bool {
    match (recorded, new) {
        (None, _) => true,
        (Some(None), Some(_)) => true,
        (Some(Some(old)), Some(new)) => new < old,
        (Some(_), None) => false,
    }
}

/// The canonicity game of one in-flight exit (spec: CHAL-1, CHAL-2): challenges and responses
/// alternate, each with an older position than the last word, until processing fixes the verdict.
/// The contract keeps exactly this state (`nonCanonical`, `competitorTxPos`, `inFlightTxPos`,
/// `challenger`); a differential test drives both with the same moves.
///
/// Positions are transaction positions (`blknum * 1e9 + txIndex * 1e4`); `None` as a competitor
/// means "not shown included", younger than any position. Each accepted move strictly lowers what
/// stands (a not-included competitor can only come first), so the game ends, and whatever the
/// order of moves the last word is the oldest evidence shown on either side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CanonicityGame {
    /// The competitor of the last accepted challenge (`None`: never challenged; `Some(None)`: not
    /// shown included).
    pub competitor: Option<Option<u128>>,
    /// The inclusion of the in-flight transaction shown by the last accepted response.
    pub inclusion: Option<u128>,
    /// An unanswered challenge stands: the exit is not canonical as things are.
    pub challenged: bool,
}

impl CanonicityGame {
    /// What a new competitor must be older than (the `recorded` of [`replaces_competitor`]): the
    /// unanswered competitor, else the inclusion that answered the last one, else nothing.
    pub fn standing(&self) -> Option<Option<u128>> {
        if self.challenged { self.competitor } else { self.inclusion.map(Some) }
    }

    /// A canonicity challenge with a competitor at `competitor` (spec: CHAL-1); on success it
    /// stands, and its sender is the challenger the exit bond goes to unless it is answered.
    pub fn challenge(&mut self, competitor: Option<u128>) -> Result<(), ChallengeError> {
        let standing = self.standing();
        if !replaces_competitor(standing, competitor) {
            return Err(ChallengeError::CompetitorNotOlder {
                competitor,
                standing: standing.flatten(),
            });
        }
        self.competitor = Some(competitor);
        self.challenged = true;
        Ok(())
    }

    /// A response showing the in-flight transaction included at `inclusion` (spec: CHAL-2); on
    /// success the exit is canonical again and `inclusion` stands.
    pub fn respond(&mut self, inclusion: u128) -> Result<(), ChallengeError> {
        if !self.challenged {
            return Err(ChallengeError::NotChallenged);
        }
        answers_competitor(inclusion, self.competitor.flatten())?;
        self.inclusion = Some(inclusion);
        self.challenged = false;
        Ok(())
    }

    /// Whether no unanswered challenge stands ([`InFlightExitState::canonical`]).
    pub fn canonical(&self) -> bool {
        !self.challenged
    }
}

/// What an in-flight exit holds when it is processed (spec: EXIT-11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InFlightExitState {
    /// No unanswered canonicity challenge stands.
    pub canonical: bool,
    /// Per input: piggybacked (and not challenged away).
    pub inputs_piggybacked: Vec<bool>,
    /// Per input: already finalized on L1 (paid by another exit, or spent by a processed one).
    pub inputs_finalized: Vec<bool>,
    /// Per output: piggybacked (and not challenged away).
    pub outputs_piggybacked: Vec<bool>,
    /// Per output: already finalized on L1.
    pub outputs_finalized: Vec<bool>,
}

/// What processing an in-flight exit pays and finalizes (spec: EXIT-11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InFlightSettlement {
    /// Inputs paid to their owners.
    pub pay_inputs: Vec<usize>,
    /// Outputs paid to their owners.
    pub pay_outputs: Vec<usize>,
    /// Inputs marked finalized.
    pub finalize_inputs: Vec<usize>,
    /// Outputs marked finalized.
    pub finalize_outputs: Vec<usize>,
}

/// Settles an in-flight exit (spec: EXIT-11).
///
/// Canonical, and none of its inputs already finalized: the transaction happened, so its
/// piggybacked outputs are paid and all its inputs are finalized (they can never exit again).
/// Otherwise the transaction did not (or cannot be allowed to) happen: piggybacked inputs that are
/// still unpaid go back to their owners. An input finalized elsewhere (say by a standard exit)
/// makes the transaction non-canonical, which is what stops one coin being paid twice.
pub fn settle_in_flight_exit(state: &InFlightExitState) -> InFlightSettlement {
    let flagged = |flags: &[bool], skip: &[bool]| -> Vec<usize> {
        flags
            .iter()
            .enumerate()
            .filter(|(i, on)| **on && !skip.get(*i).copied().unwrap_or(false))
            .map(|(i, _)| i)
            .collect()
    };
    let any_input_finalized = state.inputs_finalized.iter().any(|f| *f);
    if state.canonical && !any_input_finalized {
        let pay_outputs = flagged(&state.outputs_piggybacked, &state.outputs_finalized);
        InFlightSettlement {
            finalize_inputs: (0..state.inputs_piggybacked.len()).collect(),
            finalize_outputs: pay_outputs.clone(),
            pay_outputs,
            pay_inputs: Vec::new(),
        }
    } else {
        let pay_inputs = flagged(&state.inputs_piggybacked, &state.inputs_finalized);
        InFlightSettlement {
            finalize_inputs: pay_inputs.clone(),
            pay_inputs,
            ..InFlightSettlement::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{signing::Signer, tx::Output};
    use alloy_primitives::{B256, address};

    const P: u64 = 604_800;

    fn pos(b: u64, t: u16, o: u8) -> UtxoPos {
        UtxoPos::new(b, t, o).unwrap()
    }

    fn signer(n: u8) -> Signer {
        Signer::from_bytes(&B256::repeat_byte(n)).unwrap()
    }

    fn domain() -> SigningDomain {
        SigningDomain::new(31337, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
    }

    fn pay(inputs: &[UtxoPos], to: Address, amount: u64, key: &[&Signer]) -> SignedTransaction {
        let tx = Transaction::payment(
            inputs,
            vec![Output::new(to, Address::ZERO, U256::from(amount))],
            B256::ZERO,
        );
        let sigs = key.iter().map(|k| k.sign_tx(&domain(), &tx)).collect();
        SignedTransaction::new(tx, sigs)
    }

    #[test]
    fn deposits_exit_one_period_after_start_others_two_after_their_block() {
        let now = 10 * P;
        assert_eq!(standard_exit_exitable_at(pos(1001, 0, 0), now, now - 1, P), now + P);
        // Fresh child block: its exits wait until two periods after submission.
        assert_eq!(standard_exit_exitable_at(pos(2000, 0, 0), now, now - 1, P), now - 1 + 2 * P);
        // Old child block: one period after the start.
        assert_eq!(standard_exit_exitable_at(pos(2000, 0, 0), now, 0, P), now + P);
        // In-flight exits treat a deposit input like any block.
        assert_eq!(in_flight_exit_exitable_at(now, now - 1, P), now - 1 + 2 * P);
    }

    #[test]
    fn priority_orders_by_time_then_position_then_nonce() {
        let a = exit_priority(100, pos(1000, 0, 0), 9);
        let b = exit_priority(100, pos(2000, 0, 0), 1);
        let c = exit_priority(101, pos(1000, 0, 0), 0);
        assert!(a < b && b < c);
        assert_eq!(split_priority(b), (100, pos(2000, 0, 0).to_u128(), 1));
        let max = UtxoPos::new(u64::MAX, u16::MAX, 4).unwrap();
        assert_eq!(
            split_priority(exit_priority(u64::MAX, max, u64::MAX)),
            (u64::MAX, max.to_u128(), u64::MAX)
        );
    }

    #[test]
    fn phases_follow_the_half_period() {
        assert_eq!(in_flight_phase(0, 2 * P, P / 2 - 1, P), InFlightPhase::Piggyback);
        assert_eq!(in_flight_phase(0, 2 * P, P / 2, P), InFlightPhase::Challenge);
        assert_eq!(in_flight_phase(0, 2 * P, 2 * P, P), InFlightPhase::Exitable);
        assert!(!can_delete_unpiggybacked(0, P / 2 - 1, P, false));
        assert!(can_delete_unpiggybacked(0, P / 2, P, false));
        assert!(!can_delete_unpiggybacked(0, P, P, true));
    }

    #[test]
    fn a_signed_spend_challenges_a_standard_exit() {
        let (alice, bob) = (signer(1), signer(2));
        let spent = pos(1000, 0, 0);
        let spend = pay(&[pos(1001, 0, 0), spent], bob.address(), 5, &[&bob, &alice]);
        assert_eq!(
            spends(&spend, spent, alice.address(), &domain()),
            Ok(SpendProof { input_index: 1 })
        );
        // Signed by someone else than the owner: no challenge.
        assert!(matches!(
            spends(&spend, pos(1001, 0, 0), alice.address(), &domain()),
            Err(ChallengeError::NotSignedByOwner { input_index: 0, .. })
        ));
        assert_eq!(
            spends(&spend, pos(3000, 0, 0), alice.address(), &domain()),
            Err(ChallengeError::DoesNotSpend { output: pos(3000, 0, 0) })
        );
    }

    #[test]
    fn competitors_are_found_and_answered_by_older_inclusion() {
        let (alice, bob) = (signer(1), signer(2));
        let ife = pay(&[pos(1000, 0, 0)], bob.address(), 5, &[&alice]);
        let competitor = pay(&[pos(1000, 0, 0)], alice.address(), 5, &[&alice]);
        let owners = [alice.address()];
        assert_eq!(
            competes(&ife.transaction, &owners, &competitor, &domain()),
            Ok(Competition { in_flight_input_index: 0, competitor_input_index: 0 })
        );
        assert_eq!(
            competes(&ife.transaction, &owners, &ife, &domain()),
            Err(ChallengeError::SameTransaction)
        );
        assert_eq!(answers_competitor(2_000_000_000, None), Ok(()));
        assert_eq!(answers_competitor(2_000_000_000, Some(3_000_000_000)), Ok(()));
        assert_eq!(
            answers_competitor(3_000_000_000, Some(2_000_000_000)),
            Err(ChallengeError::NotOlder)
        );
        assert!(replaces_competitor(Some(None), Some(5)));
        assert!(replaces_competitor(Some(Some(6)), Some(5)));
        assert!(!replaces_competitor(Some(Some(5)), Some(6)));
        assert!(!replaces_competitor(Some(Some(5)), None));
    }

    /// Issue 12 item 2: once a response recorded an inclusion and an older competitor was
    /// accepted, that competitor stands; neither a younger one nor itself again replaces it.
    #[test]
    fn what_stands_is_the_last_word() {
        let mut game = CanonicityGame::default();
        assert_eq!(game.standing(), None);
        assert_eq!(game.respond(4), Err(ChallengeError::NotChallenged));
        game.challenge(None).unwrap();
        game.respond(4).unwrap();
        assert_eq!(game.standing(), Some(Some(4)));
        assert!(game.canonical());
        game.challenge(Some(1)).unwrap();
        assert_eq!(game.standing(), Some(Some(1)));
        for replay in [Some(3), Some(1), None] {
            assert_eq!(
                { game }.challenge(replay),
                Err(ChallengeError::CompetitorNotOlder { competitor: replay, standing: Some(1) })
            );
        }
        assert_eq!(game.respond(2), Err(ChallengeError::NotOlder));
        assert!(!game.canonical());
    }

    proptest::proptest! {
        /// Whatever the moves, what stands only goes down, and a canonical verdict means the
        /// inclusion shown is older than every competitor accepted.
        #[test]
        fn the_game_ends_on_the_oldest_evidence(moves in proptest::collection::vec(
            (proptest::bool::ANY, proptest::option::of(1u128..20)), 0..12)) {
            let mut game = CanonicityGame::default();
            let mut oldest_competitor: Option<Option<u128>> = None;
            let mut last = u128::MAX;
            for (respond, pos) in moves {
                let accepted = match (respond, pos) {
                    (true, Some(p)) => game.respond(p).is_ok(),
                    (true, None) => false,
                    (false, p) => game.challenge(p).is_ok(),
                };
                if accepted && !respond {
                    let p = pos.unwrap_or(u128::MAX);
                    oldest_competitor = Some(Some(oldest_competitor.flatten().map_or(p, |o| o.min(p))));
                }
                let now = game.standing().map_or(u128::MAX, |s| s.unwrap_or(u128::MAX));
                proptest::prop_assert!(now <= last);
                last = now;
            }
            if let (true, Some(Some(oldest))) = (game.canonical(), oldest_competitor) {
                proptest::prop_assert!(game.inclusion.is_some_and(|i| i < oldest));
            }
        }
    }

    #[test]
    fn settlement_pays_outputs_only_when_canonical_and_inputs_untouched() {
        let mut state = InFlightExitState {
            canonical: true,
            inputs_piggybacked: vec![true, false],
            inputs_finalized: vec![false, false],
            outputs_piggybacked: vec![true, true],
            outputs_finalized: vec![false, true],
        };
        let s = settle_in_flight_exit(&state);
        assert_eq!(s.pay_outputs, vec![0]);
        assert_eq!(s.finalize_inputs, vec![0, 1]);
        assert!(s.pay_inputs.is_empty());
        // A standard exit already paid input 1: the tx is treated as non-canonical and only
        // the untouched piggybacked input is paid back.
        state.inputs_finalized[1] = true;
        let s = settle_in_flight_exit(&state);
        assert!(s.pay_outputs.is_empty());
        assert_eq!(s.pay_inputs, vec![0]);
        state.canonical = false;
        state.inputs_finalized[1] = false;
        assert_eq!(settle_in_flight_exit(&state).pay_inputs, vec![0]);
    }
}
