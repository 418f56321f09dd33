//! Contract reverts for people: every custom error of the plasma contracts (`PlasmaFramework`,
//! `StandardExitGame`, `InFlightExitGame`, `BatchExitGame`) and OpenZeppelin's ERC-20 errors,
//! decoded by name with their fields and a sentence saying what happened and what to do.
//!
//! A raw selector (`0x8f4e2b1a`) tells a wallet user nothing; a name alone
//! (`FrameworkNoExitDue`) tells them little more. [`decode_revert`] gives both and a sentence.
//! The test `every_error_in_the_abis_has_a_sentence` reads the committed ABIs, so an error added
//! to a contract cannot go unnamed: the test fails until [`sentence`] has a line for it.

use crate::{BatchExitGame, InFlightExitGame, PlasmaFramework, StandardExitGame, TestToken};
use alloy::sol_types::{Panic, Revert, SolError, SolInterface};

/// A revert decoded: the error's name, its fields, and what it means for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedError {
    /// The Solidity error's name (`FrameworkNothingToWithdraw`), `Error` for `revert("…")` /
    /// `require(…, "…")`, `Panic` for a Solidity panic.
    pub name: String,
    /// Its fields as `name: value, …` (empty for an error without fields).
    pub args: String,
    /// What it means, in a sentence.
    pub sentence: String,
}

impl std::fmt::Display for DecodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.args.is_empty() {
            write!(f, "{}: {}", self.name, self.sentence)
        } else {
            write!(f, "{} ({}): {}", self.name, self.args, self.sentence)
        }
    }
}

/// Splits a sol!-generated error's `Debug` text, `Name(Name { a: 1, b: 2 })` or `Name(Name)`,
/// into the name and `a: 1, b: 2`.
fn split_debug(debug: &str) -> (String, String) {
    let name = debug.split(['(', ' ', '{']).next().unwrap_or(debug).to_owned();
    let args = match (debug.find('{'), debug.rfind('}')) {
        (Some(open), Some(close)) if open < close => debug[open + 1..close].trim().to_owned(),
        _ => String::new(),
    };
    (name, args)
}

fn named(debug: &str) -> DecodedError {
    let (name, args) = split_debug(debug);
    let sentence = sentence(&name).map_or_else(
        || "the contract refused the call (no description of this error yet)".to_owned(),
        str::to_owned,
    );
    DecodedError { name, args, sentence }
}

/// Decodes revert `data`: a custom error of any plasma contract or OpenZeppelin's ERC-20, a
/// `revert("reason")` string, or a panic. `None` for data that is none of these (an empty revert,
/// or an error of some other contract).
pub fn decode_revert(data: &[u8]) -> Option<DecodedError> {
    // The four contracts share library errors (PlasmaTx*, ExitGame*, …): the first enum that
    // knows a selector names it, and the names are the same in all.
    if let Ok(e) = PlasmaFramework::PlasmaFrameworkErrors::abi_decode(data) {
        return Some(named(&format!("{e:?}")));
    }
    if let Ok(e) = StandardExitGame::StandardExitGameErrors::abi_decode(data) {
        return Some(named(&format!("{e:?}")));
    }
    if let Ok(e) = InFlightExitGame::InFlightExitGameErrors::abi_decode(data) {
        return Some(named(&format!("{e:?}")));
    }
    if let Ok(e) = BatchExitGame::BatchExitGameErrors::abi_decode(data) {
        return Some(named(&format!("{e:?}")));
    }
    if let Ok(e) = TestToken::TestTokenErrors::abi_decode(data) {
        return Some(named(&format!("{e:?}")));
    }
    if let Ok(r) = Revert::abi_decode(data) {
        return Some(DecodedError {
            name: "Error".into(),
            args: format!("{:?}", r.reason),
            sentence: format!("the contract refused: {}", r.reason),
        });
    }
    if let Ok(p) = Panic::abi_decode(data) {
        let why = p.kind().map_or_else(|| "unknown panic code".to_owned(), |k| k.to_string());
        return Some(DecodedError {
            name: "Panic".into(),
            args: format!("code: {}", p.code),
            sentence: format!("the contract panicked ({why}): a bug in the contract or the call"),
        });
    }
    None
}

/// The name and fields of a custom error of the plasma contracts in revert `data`, if it is one
/// (`StandardExitAlreadyStarted { utxoPos: 7 }`); [`decode_revert`] adds the sentence.
pub fn revert_reason(data: &[u8]) -> Option<String> {
    decode_revert(data)
        .map(|d| if d.args.is_empty() { d.name } else { format!("{} {{ {} }}", d.name, d.args) })
}

/// What error `name` means for the user, for every custom error of the plasma contracts and
/// OpenZeppelin's ERC-20 errors (see the module docs).
pub fn sentence(name: &str) -> Option<&'static str> {
    Some(match name {
        // ---- PlasmaFramework
        "FrameworkNotOperator" => "only the operator may do this (submit child blocks)",
        "FrameworkNotExitGame" => "only one of the framework's exit games may call this",
        "FrameworkBindingRefused" => {
            "the exit games are already bound, or the caller is not the deployer"
        }
        "FrameworkNotStarted" => {
            "the chain has not started: its exit games are not bound yet (the deployment is \
             incomplete)"
        }
        "FrameworkZeroRoot" => {
            "a block root of zero is refused (it would look like a missing block)"
        }
        "FrameworkNoRoots" => "a run of blocks to commit must hold at least one root",
        "FrameworkUnexpectedBlockNumber" => {
            "the child block number is not the next one: that root was already committed or the \
             operator is out of step"
        }
        "FrameworkDepositBlocksExhausted" => {
            "no deposit slot is left until the operator submits the next child block: try the \
             deposit again shortly"
        }
        "FrameworkDepositFeeTooLow" => {
            "the ETH sent beyond the deposit does not cover the deposit fee of the next slot"
        }
        "FrameworkNotADeposit" => "the deposit transaction is not a deposit with one output",
        "FrameworkDepositOwnerMismatch" => "a deposit's output must belong to the depositor",
        "FrameworkDepositTokenMismatch" => {
            "the deposit's token does not match the call (ETH deposits take address 0, ERC-20 \
             deposits the token's address)"
        }
        "FrameworkDepositAmountMismatch" => "the deposit's amount is not what was paid",
        "FrameworkTokenTransferMismatch" => {
            "the token moved a different amount than asked: fee-on-transfer and rebasing tokens \
             cannot be deposited"
        }
        "FrameworkDepositCapExceeded" => {
            "the deposit would take the token's lifetime deposits above the vault's cap (2^128 - 2 \
             base units, BOND-4)"
        }
        "FrameworkNotAToken" => "registerToken takes an ERC-20 token; ETH needs no registration",
        "FrameworkQueueHeadChanged" => {
            "the exit queue's head changed: someone processed exits first; try again"
        }
        "FrameworkNoExitDue" => {
            "no exit of this token can be processed yet: the queue is empty or its first exit's \
             challenge period has not ended (see `plasma exits` for when)"
        }
        "FrameworkZeroMaxExits" => "at least one exit must be processed (--max ≥ 1)",
        "FrameworkNothingToWithdraw" => {
            "nothing is credited to this account in this token: exits pay only once processed \
             (`plasma process`), and credits already withdrawn are gone"
        }
        "FrameworkEthTransferFailed" => {
            "the ETH transfer of the withdrawal failed: the receiving account refused ETH"
        }
        "FrameworkNotBatchGame" => "only the batch exit game may call this",
        "FrameworkBondValueMismatch" => "the ETH sent does not equal the bonds credited",
        "FrameworkNoDebtPayable" => {
            "no debt of this token can be paid now: none is outstanding, or nothing was returned \
             to the pool yet"
        }
        // ---- exit games, shared
        "ExitGameNotFramework" => "only the framework may call this",
        "ExitGameNotBondAdmin" => "only the bond admin may change bond sizes",
        "ExitGameWrongBond" => {
            "the ETH sent is not the bond due (the bond size may have just changed: try again)"
        }
        "ExitGameUnknownBlock" => {
            "no child block with this number is committed on L1 (yet): sync again later"
        }
        "ExitGameInvalidInclusionProof" => {
            "the inclusion proof does not put the transaction at this position of a committed \
             block: the stored proof is wrong or the block was reorganised"
        }
        "ExitGameNoSuchOutput" => "the position names an output the transaction does not have",
        "ExitGameWrongBlockKind" => {
            "a deposit outside a deposit block, or a payment inside one: the position is wrong"
        }
        "BondChangeOutOfBounds" => {
            "a new bond size must be between half and twice the current one, and not zero"
        }
        "MerkleProofLength" => "an inclusion proof must be exactly 512 bytes",
        "PlasmaSignatureInvalid" => "a signature does not recover to any address",
        "UtxoPosInvalid" => "the number is not a valid output position",
        "PlasmaTxTooLarge" => "the transaction is longer than any valid transaction",
        "PlasmaTxNonCanonical" => "the transaction is not in its canonical encoding",
        "PlasmaTxUnknownType" => "the transaction type is unknown",
        "PlasmaTxWrongInputCount" => {
            "the transaction has a number of inputs its type does not allow"
        }
        "PlasmaTxWrongOutputCount" => {
            "the transaction has a number of outputs its type does not allow"
        }
        "PlasmaTxDuplicateInput" => "the transaction spends the same output twice",
        "PlasmaTxInvalidPosition" => "an input of the transaction is not a valid output position",
        "PlasmaTxZeroAmount" => "an output of the transaction has a zero amount",
        "PlasmaTxZeroOwner" => "an output of the transaction belongs to address 0",
        "PlasmaTxAmountOverflow" => "the transaction's amounts of a token add up past 2^256",
        // ---- StandardExitGame
        "StandardExitNotOwner" => {
            "this account does not own the output and holds no authorization from its owner"
        }
        "StandardExitAlreadyStarted" => {
            "an exit of this output was already started (one per output, ever): see `plasma exits`"
        }
        "StandardExitOutputFinalized" => {
            "the output was already paid out or spent by a processed exit"
        }
        "StandardExitNotActive" => "there is no active standard exit with this id",
        "StandardExitNotASpend" => {
            "the challenging transaction's input does not spend the exiting output"
        }
        "StandardExitBadSpendSignature" => {
            "the spend shown is not signed by the exiting output's owner"
        }
        "StandardExitBadAuthorization" => {
            "the exit authorization expired, was revoked, or names another exitor: sign a new one \
             (`plasma authorize-watchtower`)"
        }
        "StandardExitNotBatchClaimed" => {
            "the batch holds no live claim of this exit's output at that index with that proof"
        }
        "StandardExitStartedFirst" => {
            "the standard exit started no later than the batch, so it stands (the batch's claim \
             is struck instead)"
        }
        "StandardExitBondNotGwei" => {
            "a standard exit bond must be a whole number of gwei below 2^40 gwei"
        }
        "StandardExitLengthMismatch" => "a batch of exits needs one authorization per exit",
        // ---- InFlightExitGame
        "InFlightExitNotAPayment" => "only payments can exit in flight",
        "InFlightExitLengthMismatch" => {
            "the start arguments do not give one entry per input of the transaction"
        }
        "InFlightExitInputMismatch" => "a position given is not the transaction's input",
        "InFlightExitBadSignature" => {
            "a signature does not come from the owner of the output its input spends"
        }
        "InFlightExitValueCreated" => {
            "the transaction's outputs exceed its inputs: it is invalid and cannot exit"
        }
        "InFlightExitAlreadyStarted" => {
            "an in-flight exit of this transaction is open or was settled (one per transaction)"
        }
        "InFlightExitNotParty" => {
            "only an owner of one of the transaction's inputs or outputs may exit it in flight"
        }
        "InFlightExitBadAuthorization" => {
            "the exit authorization expired or was revoked: sign a new one"
        }
        "InFlightExitNotActive" => {
            "no open in-flight exit of this transaction (never started, deleted, or processed)"
        }
        "InFlightExitPhaseOver" => {
            "the exit's first phase is over: piggybacks and canonicity challenges are closed"
        }
        "InFlightExitPhaseNotOver" => "the exit can be deleted only after its first phase ends",
        "InFlightExitNoSuchIndex" => "the index is beyond the transaction's inputs or outputs",
        "InFlightExitNotOwner" => "only the owner of an input or output may piggyback it",
        "InFlightExitAlreadyPiggybacked" => "this input or output is already piggybacked",
        "InFlightExitNotPiggybacked" => {
            "this input or output is not piggybacked: nothing to challenge"
        }
        "InFlightExitSameTransaction" => {
            "the challenging transaction is the in-flight transaction itself"
        }
        "InFlightExitWrongTransaction" => "the transaction given is not the exit's transaction",
        "InFlightExitNotASpend" => "the transaction's input does not spend the output named",
        "InFlightExitCompetitorNotOlder" => {
            "a new competitor must be older than what stands against the exit"
        }
        "InFlightExitNotChallenged" => "no canonicity challenge stands: nothing to respond to",
        "InFlightExitResponseNotOlder" => "the inclusion shown is not older than the competitor",
        "InFlightExitBadTxPos" => "the number is not a transaction position",
        "InFlightExitHasPiggybacks" => {
            "the exit has piggybacks: it is settled by processing, not deleted"
        }
        // ---- BatchExitGame
        "BatchExitNoGroups" => "a batch exit needs at least one group of claims",
        "BatchExitMalformedClaims" => "a group's claims are empty or not whole 20-byte records",
        "BatchExitTooManyClaims" => "more claims than a batch holds (65,536)",
        "BatchExitBadYoungestBlock" => {
            "the youngest claim's block was committed with another root or timestamp"
        }
        "BatchExitNotActive" => "the batch is not active (not started, or already processed)",
        "BatchExitNotProcessed" => {
            "the batch is not processed yet: wait until it can be (see `plasma exits`), then \
             `plasma process` and `plasma payout`"
        }
        "BatchExitInvalidClaim" => "a claim holds an invalid position or a zero amount",
        "BatchExitNotAscending" => "a group's positions must ascend strictly",
        "BatchClaimBadProof" => {
            "the claim is not in the batch (wrong owner, record, index or proof)"
        }
        "BatchClaimNotLive" => "the claim is struck, paid, or demanded after processing",
        "BatchClaimNotDemanded" => "the claim is not under demand",
        "BatchClaimMismatch" => "the transaction shown is not exactly the claim's output",
        "BatchClaimNotInvalid" => "the challenge fails: the output exists exactly as claimed",
        "BatchClaimNotExited" => {
            "the challenge fails: the output has no standard exit and is not finalized"
        }
        "BatchClaimNotASpend" => "the input shown does not spend the claim's position",
        "BatchClaimBadSpendSignature" => "the spend is not signed by the claim's owner",
        "BatchDemandClosed" => "demands are accepted only in the batch's first half period",
        "BatchPayoutTooMany" => "too many payouts in one call: pay fewer claims at a time",
        "BatchDecodeOutOfGas" => {
            "the transaction decoder ran out of gas: send the call with more gas"
        }
        // ---- OpenZeppelin
        "ReentrancyGuardReentrantCall" => "a re-entrant call was refused",
        "SafeCastOverflowedUintDowncast" => "a value is too large for the contract's storage",
        "InvalidShortString" | "StringTooLong" => "a string is too long for the contract",
        "SafeERC20FailedOperation" => {
            "the token refused the transfer (a failed or false-returning ERC-20 call)"
        }
        "ERC20InsufficientBalance" => "the account does not hold enough of the token",
        "ERC20InsufficientAllowance" => {
            "the framework is not allowed to move that much of the token (approve it first)"
        }
        "ERC20InvalidApprover" => "tokens cannot be approved from address 0",
        "ERC20InvalidReceiver" => "tokens cannot be sent to this receiver (address 0)",
        "ERC20InvalidSender" => "tokens cannot be sent from address 0",
        "ERC20InvalidSpender" => "address 0 cannot be approved as a spender",
        _ => return None,
    })
}

/// Every selector the decoder knows (for tests and tools): the contracts' error enums'.
pub fn known_selectors() -> Vec<[u8; 4]> {
    let mut all: Vec<[u8; 4]> = PlasmaFramework::PlasmaFrameworkErrors::SELECTORS
        .iter()
        .chain(StandardExitGame::StandardExitGameErrors::SELECTORS)
        .chain(InFlightExitGame::InFlightExitGameErrors::SELECTORS)
        .chain(BatchExitGame::BatchExitGameErrors::SELECTORS)
        .chain(TestToken::TestTokenErrors::SELECTORS)
        .copied()
        .collect();
    all.push(Revert::SELECTOR);
    all.push(Panic::SELECTOR);
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{U256, keccak256};

    /// The committed ABIs the bindings are generated from.
    const ABIS: [(&str, &str); 5] = [
        ("PlasmaFramework", include_str!("../artifacts/PlasmaFramework.json")),
        ("StandardExitGame", include_str!("../artifacts/StandardExitGame.json")),
        ("InFlightExitGame", include_str!("../artifacts/InFlightExitGame.json")),
        ("BatchExitGame", include_str!("../artifacts/BatchExitGame.json")),
        ("TestToken", include_str!("../artifacts/TestToken.json")),
    ];

    /// Every error of every ABI: (contract, name, input types).
    fn abi_errors() -> Vec<(&'static str, String, Vec<String>)> {
        let mut out = Vec::new();
        for (contract, text) in ABIS {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let abi = v.get("abi").unwrap_or(&v).as_array().unwrap().clone();
            for item in abi.iter().filter(|i| i["type"] == "error") {
                let name = item["name"].as_str().unwrap().to_owned();
                let types = item["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["type"].as_str().unwrap().to_owned())
                    .collect();
                out.push((contract, name, types));
            }
        }
        assert!(out.len() > 100, "the ABIs were read: {} errors", out.len());
        out
    }

    /// ABI-encoded revert data of error `name(types)` with every field zero (strings empty).
    fn zero_data(name: &str, types: &[String]) -> Vec<u8> {
        let selector = &keccak256(format!("{name}({})", types.join(",")))[..4];
        let mut head = Vec::new();
        let mut tail = Vec::new();
        for t in types {
            if t == "string" || t == "bytes" {
                let offset = 32 * types.len() + tail.len();
                head.extend_from_slice(&U256::from(offset).to_be_bytes::<32>());
                tail.extend_from_slice(&[0u8; 32]); // length 0
            } else {
                head.extend_from_slice(&[0u8; 32]);
            }
        }
        [selector, &head, &tail].concat()
    }

    #[test]
    fn every_error_in_the_abis_has_a_sentence() {
        let mut missing = Vec::new();
        for (contract, name, types) in abi_errors() {
            match sentence(&name) {
                Some(s) if s.len() > 20 => {}
                _ => missing.push(format!("{contract}.{name}")),
            }
            let data = zero_data(&name, &types);
            let decoded = decode_revert(&data)
                .unwrap_or_else(|| panic!("{contract}.{name} is not decoded from {data:02x?}"));
            assert_eq!(decoded.name, name, "{contract}.{name} decoded by its name");
            assert!(!decoded.sentence.contains("no description"), "{contract}.{name}");
            assert!(known_selectors().contains(&data[..4].try_into().unwrap()));
        }
        assert!(missing.is_empty(), "errors without a sentence: {missing:?}");
    }

    #[test]
    fn every_sentence_names_an_error_of_the_abis() {
        // The table has no stale lines: each name in it is an error some ABI declares.
        let names: std::collections::HashSet<String> =
            abi_errors().into_iter().map(|(_, n, _)| n).collect();
        let source = include_str!("errors.rs");
        let table = &source[source.find("Some(match name {").unwrap()..];
        let table = &table[..table.find("_ => return None").unwrap()];
        for line in table.lines() {
            for part in line.split('"').skip(1).step_by(2) {
                let looks_like_name = part.chars().all(|c| c.is_ascii_alphanumeric())
                    && part.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && line.contains("=>")
                    && line.find(part).is_some_and(|at| at < line.find("=>").unwrap_or(0));
                if looks_like_name {
                    assert!(names.contains(part), "{part} is in the table but in no ABI");
                }
            }
        }
    }

    #[test]
    fn errors_are_named_with_fields_and_a_sentence() {
        let data =
            StandardExitGame::StandardExitAlreadyStarted { utxoPos: U256::from(7) }.abi_encode();
        let d = decode_revert(&data).unwrap();
        assert_eq!(d.name, "StandardExitAlreadyStarted");
        assert_eq!(d.args, "utxoPos: 7");
        assert!(d.sentence.contains("already started"), "{d}");
        assert_eq!(revert_reason(&data).unwrap(), "StandardExitAlreadyStarted { utxoPos: 7 }");
        let unit = PlasmaFramework::FrameworkNotStarted {}.abi_encode();
        let d = decode_revert(&unit).unwrap();
        assert_eq!((d.name.as_str(), d.args.as_str()), ("FrameworkNotStarted", ""));
        assert_eq!(d.to_string(), format!("FrameworkNotStarted: {}", d.sentence));
        let token = TestToken::ERC20InsufficientBalance {
            sender: alloy::primitives::Address::ZERO,
            balance: U256::from(1),
            needed: U256::from(2),
        }
        .abi_encode();
        let d = decode_revert(&token).unwrap();
        assert_eq!(d.name, "ERC20InsufficientBalance");
        assert!(d.args.contains("needed: 2"), "{d}");
        let text = Revert::from("nope").abi_encode();
        assert_eq!(decode_revert(&text).unwrap().sentence, "the contract refused: nope");
        assert_eq!(decode_revert(&[0xde, 0xad, 0xbe, 0xef]), None);
        assert_eq!(decode_revert(&[]), None);
    }
}
