//! Differential test of the canonicity game (spec: CHAL-1, CHAL-2, EXIT-11): random sequences of
//! canonicity challenges and responses against the real `InFlightExitGame` on a real anvil, each
//! move's accept/revert (with its typed error), the recorded state after it, the verdict and the
//! exit bond's recipient compared with plasma-spec's `CanonicityGame` (`replaces_competitor`,
//! `answers_competitor`) and `settle_in_flight_exit`.
//!
//! Each case is a byzantine child chain: a few blocks holding, at random positions, the in-flight
//! payment (possibly several times), competitors that spend its input (each possibly several
//! times, or never), and fillers. Alice starts the exit of her payment to bob; bob piggybacks his
//! output and alice her input, so the verdict decides who is paid. Then random moves: challenges
//! with a competitor shown at one of its inclusions or not at all, from one of four challengers;
//! responses with one of the payment's inclusions; and the end of phase 1.
//!
//! Seeded and replayable: `PLASMA_DIFF_CASES` (default 64, about 15 s) and `PLASMA_DIFF_SEED`
//! (default fixed). A failure prints the seed and the shrunk case. Long run:
//! `PLASMA_DIFF_CASES=2000 PLASMA_DIFF_SEED=$RANDOM cargo test -p plasma-contracts --features devnet
//! --test canonicity_game -- --nocapture`.

#![allow(clippy::unwrap_used)]

use alloy::{
    contract::{Error as ContractError, SolCallBuilder},
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
    sol_types::SolCall,
    sol_types::SolInterface,
};
use plasma_contracts::{
    InFlightExitGame::{self, InFlightExitGameErrors as E, InFlightExitGameInstance},
    PlasmaFramework::{self, PlasmaFrameworkInstance},
    devnet::LocalChain,
};
use plasma_spec::{
    BlockTree, CanonicityGame, ChallengeError, InFlightExitState, Output, Signer, SigningDomain,
    Transaction, UtxoPos, settle_in_flight_exit,
};
use proptest::{
    prelude::*,
    test_runner::{Config, RngSeed, TestCaseError, TestRunner},
};

/// The challenge period; phase 1 is half of it.
const PERIOD: u64 = 3600;
const NOT_INCLUDED: u128 = (1 << 96) - 1;
const COMPETITORS: u8 = 3;
const CHALLENGERS: usize = 4;
const ALICE: usize = 1;
const BOB: usize = 2;
const FIRST_CHALLENGER: usize = 3;
const DEPOSIT: u64 = 10;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

/// Sends a call and reads its receipt at once: anvil mines on arrival, and the provider's receipt
/// polling would cost a poll interval per transaction.
trait Mined {
    async fn mined(self, provider: &DynProvider) -> TransactionReceipt;
}

impl<P: Provider, C: SolCall> Mined for SolCallBuilder<P, C> {
    async fn mined(self, provider: &DynProvider) -> TransactionReceipt {
        let hash = *self.send().await.unwrap().tx_hash();
        loop {
            if let Some(receipt) = provider.get_transaction_receipt(hash).await.unwrap() {
                assert!(receipt.status(), "{} reverted", C::SIGNATURE);
                return receipt;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// What a child-block slot holds.
#[derive(Clone, Copy, Debug)]
enum Slot {
    InFlight,
    Competitor(u8),
    Filler,
}

#[derive(Clone, Copy, Debug)]
enum Move {
    /// Competitor `competitor`, shown at its inclusion `at` (modulo how many it has; not shown
    /// included if `None` or if it has none), sent by challenger `by`.
    Challenge { competitor: u8, at: Option<u8>, by: u8 },
    /// The in-flight payment's inclusion `at` (modulo how many; skipped if it has none).
    Respond { at: u8, by: u8 },
    /// Time passes beyond phase 1.
    EndPhaseOne,
}

#[derive(Clone, Debug)]
struct Case {
    blocks: Vec<Vec<Slot>>,
    moves: Vec<Move>,
}

fn case() -> impl Strategy<Value = Case> {
    let slot = prop_oneof![
        3 => Just(Slot::InFlight),
        4 => (0..COMPETITORS).prop_map(Slot::Competitor),
        1 => Just(Slot::Filler),
    ];
    let mv = prop_oneof![
        5 => (0..COMPETITORS, proptest::option::weighted(0.8, any::<u8>()), any::<u8>())
            .prop_map(|(competitor, at, by)| Move::Challenge { competitor, at, by }),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(at, by)| Move::Respond { at, by }),
        1 => Just(Move::EndPhaseOne),
    ];
    (
        proptest::collection::vec(proptest::collection::vec(slot, 1..4), 1..5),
        proptest::collection::vec(mv, 1..10),
    )
        .prop_map(|(blocks, moves)| Case { blocks, moves })
}

/// The chain, deployed once; every case starts from the same snapshot (alice's deposit made).
struct World {
    chain: LocalChain,
    provider: DynProvider,
    framework: PlasmaFrameworkInstance<DynProvider>,
    game: InFlightExitGameInstance<DynProvider>,
    domain: SigningDomain,
    alice: Signer,
    deposit: Transaction,
    deposit_pos: UtxoPos,
    deposit_timestamp: u64,
    snapshot: std::cell::Cell<U256>,
    bond: U256,
    piggyback_bond: U256,
}

impl World {
    async fn new() -> Self {
        let chain = LocalChain::start(PERIOD).await.unwrap();
        let mut wallet = EthereumWallet::new(chain.key(0));
        for i in 1..FIRST_CHALLENGER + CHALLENGERS {
            wallet.register_signer(chain.key(i));
        }
        // Nonces from the node on every send: the cases rewind the chain (evm_revert), which a
        // cached nonce would not follow.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(wallet)
            .connect_http(chain.anvil.endpoint_url())
            .erased();
        let framework = PlasmaFramework::new(chain.deployment.framework, provider.clone());
        let game = InFlightExitGame::new(chain.deployment.in_flight_exit_game, provider.clone());
        let domain = SigningDomain::new(chain.anvil.chain_id(), chain.deployment.framework);
        let alice =
            Signer::from_bytes(&B256::from_slice(&chain.anvil.keys()[ALICE].to_bytes())).unwrap();
        let deposit = Transaction::deposit(alice.address(), Address::ZERO, eth(DEPOSIT));
        let receipt = framework
            .depositEth(deposit.encode().into())
            .value(eth(DEPOSIT))
            .from(alice.address())
            .mined(&provider)
            .await;
        let event = receipt.decoded_log::<PlasmaFramework::DepositCreated>().unwrap();
        let deposit_pos =
            UtxoPos::from_u128(u128::try_from(event.blknum).unwrap() * 1_000_000_000).unwrap();
        let bond = game.inFlightExitBond().call().await.unwrap();
        let piggyback_bond = game.piggybackBond().call().await.unwrap();
        let world = Self {
            chain,
            provider,
            framework,
            game,
            domain,
            alice,
            deposit,
            deposit_pos,
            deposit_timestamp: event.timestamp,
            snapshot: std::cell::Cell::new(U256::ZERO),
            bond,
            piggyback_bond,
        };
        world.snapshot.set(world.take_snapshot().await);
        world
    }

    async fn rpc(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.provider.raw_request(method.into(), params).await.unwrap()
    }

    /// Back to the snapshot, and a fresh one for the next case (anvil consumes it on revert).
    async fn take_snapshot(&self) -> U256 {
        plasma_contracts::devnet::snapshot(&self.provider).await.unwrap()
    }

    async fn reset(&self) {
        let ok = plasma_contracts::devnet::revert_to(&self.provider, self.snapshot.get()).await;
        assert!(ok.unwrap(), "evm_revert");
        self.snapshot.set(self.take_snapshot().await);
    }

    async fn skip(&self, seconds: u64) {
        self.rpc("evm_increaseTime", serde_json::json!([seconds])).await;
        self.rpc("evm_mine", serde_json::json!([])).await;
    }

    fn address(&self, i: usize) -> Address {
        self.chain.key(i).address()
    }
}

/// A committed block: its transactions' tree and its L1 timestamp.
struct Committed {
    tree: BlockTree,
    timestamp: u64,
}

/// How an exit's canonicity state reads on L1, in the model's terms.
#[derive(Debug, PartialEq, Eq)]
struct Recorded {
    non_canonical: bool,
    competitor: Option<Option<u128>>,
    inclusion: Option<u128>,
    challenger: Address,
}

fn recorded(game: &CanonicityGame, challenger: Address) -> Recorded {
    Recorded {
        non_canonical: game.challenged,
        competitor: game.competitor,
        inclusion: game.inclusion,
        challenger,
    }
}

fn tx_pos(blknum: u64, index: usize) -> u128 {
    u128::from(blknum) * 1_000_000_000 + index as u128 * 10_000
}

/// The contract's typed error for what the model refused.
fn expected_error(exit_id: U256, refusal: &ChallengeError) -> E {
    let pos = |p: Option<u128>| U256::from(p.unwrap_or(NOT_INCLUDED));
    match *refusal {
        ChallengeError::CompetitorNotOlder { competitor, standing } => {
            E::InFlightExitCompetitorNotOlder(InFlightExitGame::InFlightExitCompetitorNotOlder {
                competitorTxPos: pos(competitor),
                standingTxPos: pos(standing),
            })
        }
        ChallengeError::NotChallenged => {
            E::InFlightExitNotChallenged(InFlightExitGame::InFlightExitNotChallenged {
                exitId: exit_id,
            })
        }
        ref other => panic!("the model refused with {other}, which no move here should"),
    }
}

fn decoded(err: &ContractError) -> E {
    err.as_decoded_interface_error::<E>().unwrap_or_else(|| panic!("not a typed revert: {err}"))
}

/// Whether the contract refused with exactly `want` (the error and its values).
fn refused_with(err: &ContractError, want: &E) -> Result<(), TestCaseError> {
    let got = decoded(err);
    if got.abi_encode() == want.abi_encode() {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!("refused with {got:?}, the spec says {want:?}")))
    }
}

async fn run_case(w: &World, case: &Case) -> Result<(), TestCaseError> {
    w.reset().await;
    let (alice, bob) = (w.alice.address(), w.address(BOB));
    let payment = Transaction::payment(
        &[w.deposit_pos],
        vec![Output::new(bob, Address::ZERO, eth(6)), Output::new(alice, Address::ZERO, eth(4))],
        B256::ZERO,
    );
    let competitors: Vec<Transaction> = (0..COMPETITORS)
        .map(|k| {
            let to = w.address(FIRST_CHALLENGER + usize::from(k));
            Transaction::payment(
                &[w.deposit_pos],
                vec![Output::new(to, Address::ZERO, eth(DEPOSIT))],
                B256::ZERO,
            )
        })
        .collect();
    let exit_id = U256::from_be_bytes(payment.hash().0);

    // The byzantine operator commits the blocks.
    let mut blocks = Vec::new();
    let mut payment_at = Vec::new();
    let mut competitor_at = vec![Vec::new(); usize::from(COMPETITORS)];
    for slots in &case.blocks {
        let blknum = w.framework.nextChildBlock().call().await.unwrap();
        let txs: Vec<Vec<u8>> = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| match *slot {
                Slot::InFlight => payment.encode(),
                Slot::Competitor(k) => competitors[usize::from(k)].encode(),
                Slot::Filler => vec![0xf1, u8::try_from(i).unwrap()],
            })
            .collect();
        let number = blknum;
        for (i, slot) in slots.iter().enumerate() {
            let at = (blocks.len(), i, tx_pos(number, i));
            match *slot {
                Slot::InFlight => payment_at.push(at),
                Slot::Competitor(k) => competitor_at[usize::from(k)].push(at),
                Slot::Filler => {}
            }
        }
        let tree = BlockTree::from_txs(&txs).unwrap();
        let receipt =
            w.framework.submitBlock(U256::from(blknum), tree.root()).mined(&w.provider).await;
        assert!(receipt.status());
        let timestamp = receipt.decoded_log::<PlasmaFramework::BlockSubmitted>().unwrap().timestamp;
        blocks.push(Committed { tree, timestamp });
    }

    // Alice starts; bob piggybacks his output, alice her input.
    let deposit_bytes = w.deposit.encode();
    let deposit_proof = BlockTree::from_txs(&[&deposit_bytes]).unwrap().proof(0).unwrap();
    let start = InFlightExitGame::StartArgs {
        inFlightTx: payment.encode().into(),
        inputTxs: vec![deposit_bytes.clone().into()],
        inputUtxoPos: vec![w.deposit_pos.to_u256()],
        inputProofs: vec![deposit_proof.to_bytes().into()],
        inputBlockTimestamps: vec![w.deposit_timestamp],
        signatures: vec![w.alice.sign_tx(&w.domain, &payment)],
    };
    w.game.startInFlightExit(start).value(w.bond).from(alice).mined(&w.provider).await;
    let bond = w.piggyback_bond;
    let output = w.game.piggybackOutput(exit_id, 0).value(bond).from(bob);
    output.mined(&w.provider).await;
    let input = w.game.piggybackInput(exit_id, 0).value(bond).from(alice);
    input.mined(&w.provider).await;

    // The moves, each against the model.
    let mut model = CanonicityGame::default();
    let mut challenger = Address::ZERO;
    let mut phase_one = true;
    for (step, mv) in case.moves.iter().enumerate() {
        let what = format!("step {step}: {mv:?}");
        match *mv {
            Move::EndPhaseOne => {
                if phase_one {
                    w.skip(PERIOD / 2).await;
                    phase_one = false;
                }
            }
            Move::Challenge { competitor, at, by } => {
                let sender = w.address(FIRST_CHALLENGER + usize::from(by) % CHALLENGERS);
                let shown = competitor_at[usize::from(competitor)].as_slice();
                let shown =
                    at.filter(|_| !shown.is_empty()).map(|j| shown[usize::from(j) % shown.len()]);
                let tx = &competitors[usize::from(competitor)];
                let (pos, proof, timestamp) = match shown {
                    Some((b, i, pos)) => (
                        Some(pos),
                        Bytes::from(blocks[b].tree.proof(i).unwrap().to_bytes()),
                        blocks[b].timestamp,
                    ),
                    None => (None, Bytes::new(), 0),
                };
                let args = InFlightExitGame::CompetitorArgs {
                    exitId: exit_id,
                    inputIndex: 0,
                    competingTx: tx.encode().into(),
                    competitorInputIndex: 0,
                    competitorSignature: w.alice.sign_tx(&w.domain, tx),
                    competitorTxPos: U256::from(pos.unwrap_or(0)),
                    competitorProof: proof,
                    competitorBlockTimestamp: timestamp,
                };
                let call = w.game.challengeInFlightExitNotCanonical(args).from(sender);
                let got = call.call().await;
                if !phase_one {
                    // spec: EXIT-7 — canonicity challenges close with phase 1.
                    let err = got.err().ok_or_else(|| {
                        TestCaseError::fail(format!("{what}: accepted after phase 1"))
                    })?;
                    prop_assert!(
                        matches!(decoded(&err), E::InFlightExitPhaseOver(_)),
                        "{what}: {:?}",
                        decoded(&err)
                    );
                    continue;
                }
                match (model.challenge(pos), got) {
                    (Ok(()), Ok(_)) => {
                        call.mined(&w.provider).await;
                        challenger = sender;
                    }
                    (Err(refusal), Err(e)) => refused_with(&e, &expected_error(exit_id, &refusal))
                        .map_err(|f| TestCaseError::fail(format!("{what}: {f}")))?,
                    (Ok(()), Err(e)) => {
                        return Err(TestCaseError::fail(format!(
                            "{what}: the spec accepts, the contract refuses with {:?}",
                            decoded(&e)
                        )));
                    }
                    (Err(refusal), Ok(_)) => {
                        return Err(TestCaseError::fail(format!(
                            "{what}: the spec refuses ({refusal}), the contract accepts"
                        )));
                    }
                }
            }
            Move::Respond { at, by } => {
                if payment_at.is_empty() {
                    continue;
                }
                let (b, i, pos) = payment_at[usize::from(at) % payment_at.len()];
                let sender = w.address(usize::from(by) % (FIRST_CHALLENGER + CHALLENGERS));
                let call = w
                    .game
                    .respondToNonCanonicalChallenge(
                        exit_id,
                        payment.encode().into(),
                        U256::from(pos),
                        blocks[b].tree.proof(i).unwrap().to_bytes().into(),
                        blocks[b].timestamp,
                    )
                    .from(sender);
                let got = call.call().await;
                match (model.respond(pos), got) {
                    (Ok(()), Ok(_)) => {
                        call.mined(&w.provider).await;
                    }
                    (Err(ChallengeError::NotOlder), Err(e)) => {
                        let competitor = model.competitor.flatten().unwrap_or(NOT_INCLUDED);
                        let want = E::InFlightExitResponseNotOlder(
                            InFlightExitGame::InFlightExitResponseNotOlder {
                                inFlightTxPos: U256::from(pos),
                                competitorTxPos: U256::from(competitor),
                            },
                        );
                        refused_with(&e, &want)
                            .map_err(|f| TestCaseError::fail(format!("{what}: {f}")))?;
                    }
                    (Err(refusal), Err(e)) => refused_with(&e, &expected_error(exit_id, &refusal))
                        .map_err(|f| TestCaseError::fail(format!("{what}: {f}")))?,
                    (Ok(()), Err(e)) => {
                        return Err(TestCaseError::fail(format!(
                            "{what}: the spec accepts, the contract refuses with {:?}",
                            decoded(&e)
                        )));
                    }
                    (Err(refusal), Ok(_)) => {
                        return Err(TestCaseError::fail(format!(
                            "{what}: the spec refuses ({refusal}), the contract accepts"
                        )));
                    }
                }
            }
        }
        // What L1 records after the move is what the model holds.
        let d = w.game.inFlightExitDetails(exit_id).call().await.unwrap();
        let s = w.game.inFlightExit(exit_id).call().await.unwrap();
        let competitor = match u128::try_from(d.competitorTxPos).unwrap() {
            0 => None,
            NOT_INCLUDED => Some(None),
            p => Some(Some(p)),
        };
        let inclusion = match u128::try_from(d.inFlightTxPos).unwrap() {
            0 => None,
            p => Some(p),
        };
        let on_l1 = Recorded {
            non_canonical: s.nonCanonical,
            competitor,
            inclusion,
            challenger: d.challenger,
        };
        prop_assert_eq!(on_l1, recorded(&model, challenger), "{}", what);
    }

    // Settlement: the verdict, what is paid, and who takes the exit bond.
    w.skip(3 * PERIOD).await;
    w.framework.processExits(Address::ZERO, U256::ZERO, U256::from(10)).mined(&w.provider).await;
    let settlement = settle_in_flight_exit(&InFlightExitState {
        canonical: model.canonical(),
        inputs_piggybacked: vec![true],
        inputs_finalized: vec![false],
        outputs_piggybacked: vec![true, false],
        outputs_finalized: vec![false, false],
    });
    let verdict = w.game.inFlightExit(exit_id).call().await.unwrap().verdict;
    prop_assert_eq!(verdict, if model.canonical() { 1 } else { 2 }, "verdict");
    let paid = if settlement.pay_outputs == [0] {
        eth(6)
    } else if settlement.pay_inputs == [0] {
        eth(DEPOSIT)
    } else {
        U256::ZERO
    };
    let credited = w.framework.totalCredited(Address::ZERO).call().await.unwrap();
    prop_assert_eq!(credited, paid, "paid");
    let bob_credit = w.framework.withdrawable(bob, Address::ZERO).call().await.unwrap();
    prop_assert_eq!(bob_credit >= eth(6), settlement.pay_outputs == [0], "bob paid");
    for i in 0..CHALLENGERS {
        let who = w.address(FIRST_CHALLENGER + i);
        let credit = w.framework.withdrawable(who, Address::ZERO).call().await.unwrap();
        let takes_bond = !model.canonical() && who == challenger;
        prop_assert_eq!(credit > U256::ZERO, takes_bond, "exit bond of challenger {}", who);
    }
    Ok(())
}

#[test]
fn the_contract_plays_the_canonicity_game_as_the_spec() {
    let env = |name: &str, default: u64| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let cases = u32::try_from(env("PLASMA_DIFF_CASES", 64)).unwrap();
    let seed = env("PLASMA_DIFF_SEED", 0x5eed_c4a1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let world = rt.block_on(World::new());
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: u32::try_from(env("PLASMA_DIFF_SHRINK", 64)).unwrap(),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let result = runner.run(&case(), |c| rt.block_on(run_case(&world, &c)));
    if let Err(e) = result {
        panic!("PLASMA_DIFF_SEED={seed} PLASMA_DIFF_CASES={cases}: {e}");
    }
    println!(
        "canonicity game: {cases} cases (seed {seed}) agree with plasma-spec in {:.1?}",
        started.elapsed()
    );
}
