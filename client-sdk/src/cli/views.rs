//! Answers made from the local store alone: `balance`, `utxos`, `history`, and `exits` when L1
//! cannot be reached. The same code answers with L1 up (after a connect) and down (the store
//! opened directly), so the two can never disagree on what the store holds; only the freshness
//! note differs.

use super::output::{Report, Tokens, duration, notes_on_stderr, unix_now, utc, when};
use alloy::primitives::Address;
use plasma_sdk::{
    Balances, HistoryEntry, HistoryKind, OutputStatus, ProofStore, SdkError, StoredOutput,
    SyncRecord,
};
use serde_json::{Value, json};

/// When the store last learnt something from L1 and the operator: the last sync, or an output
/// checked since (a deposit credited, a payment sent); `None` if never.
pub(crate) fn as_of(last: Option<&SyncRecord>, outputs: &[StoredOutput]) -> Option<u64> {
    let checked = outputs.iter().map(|o| o.checked_at).max().filter(|t| *t > 0);
    last.map(|r| r.at).max(checked)
}

/// How fresh an answer from the store is, for people: the last sync's age (or the last check of
/// an output, when never synced), and why L1 was not asked when it could not be.
pub(crate) fn freshness(
    last: Option<&SyncRecord>,
    outputs: &[StoredOutput],
    just_synced: bool,
    offline: Option<&str>,
) -> String {
    let now = unix_now();
    let mut s = match (just_synced, last, as_of(last, outputs)) {
        (true, _, _) => "just synced".to_owned(),
        (false, Some(r), _) => format!(
            "from the store, as of the sync {} ago ({} outputs listed, {} verified then)",
            duration(now.saturating_sub(r.at)),
            r.listed,
            r.added
        ),
        (false, None, Some(at)) => format!(
            "from the store, never synced; last output checked {} ago (`plasma sync` for all)",
            duration(now.saturating_sub(at))
        ),
        (false, None, None) => "never synced: run `plasma sync` or give --sync".to_owned(),
    };
    if let Some(why) = offline {
        s.push_str(&format!("; L1 unreachable ({why}): nothing re-checked"));
    }
    s
}

/// Prints the freshness on stderr when stdout carries JSON (people on a terminal get it in the
/// text).
fn note(text: &str) {
    if notes_on_stderr() {
        eprintln!("({text})");
    }
}

/// `plasma balance`.
pub(crate) fn balance(
    tokens: &Tokens,
    me: Address,
    token: Address,
    outputs: &[StoredOutput],
    last: Option<&SyncRecord>,
    just_synced: bool,
    offline: Option<&str>,
) -> Report {
    let b = Balances::of(outputs, token);
    let fresh = freshness(last, outputs, just_synced, offline);
    note(&fresh);
    let mut json = json!({
        "token": token,
        "balance": b.balance.to_string(),
        "final": b.final_balance.to_string(),
        "exiting": b.exiting.to_string(),
        "unverified": b.unverified.to_string(),
        "lastSync": last,
    });
    if let Some(why) = offline {
        json["offline"] = json!(why);
        json["ageSecs"] = json!(as_of(last, outputs).map(|at| unix_now().saturating_sub(at)));
    }
    let mut text = format!(
        "{me}\n  balance     {}  (spendable; {} of it final, vouched for by a watcher)\n",
        tokens.fmt(token, b.balance),
        tokens.fmt(token, b.final_balance)
    );
    if !b.exiting.is_zero() {
        text.push_str(&format!(
            "  exiting     {}  (see `plasma exits`)\n",
            tokens.fmt(token, b.exiting)
        ));
    }
    if !b.unverified.is_zero() {
        text.push_str(&format!(
            "  unverified  {}  (not counted: only their inclusion is proven)\n",
            tokens.fmt(token, b.unverified)
        ));
    }
    text.push_str(&format!("  ({fresh})"));
    Report::new(json, text)
}

/// A stored output as JSON, positions and amounts as decimal strings.
pub(crate) fn output_json(o: &StoredOutput) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    v["utxoPos"] = json!(o.utxo_pos.to_string());
    v["amount"] = json!(o.amount.to_string());
    v
}

fn status_word(o: &StoredOutput) -> &'static str {
    match o.status {
        OutputStatus::Unspent if o.spent_by.is_some() => "spent (pending)",
        OutputStatus::Unspent if o.exiting => "exiting",
        OutputStatus::Unspent => "unspent",
        OutputStatus::Spent => "spent",
        OutputStatus::Exiting => "exiting",
        OutputStatus::InFlight => "in flight",
        OutputStatus::BatchClaimed => "batch-claimed",
        OutputStatus::Finalized => "finalized",
        OutputStatus::NotOnChain => "NOT ON CHAIN",
        OutputStatus::Invalid => "INVALID",
    }
}

/// `plasma utxos`.
pub(crate) fn utxos(
    tokens: &Tokens,
    outputs: &[StoredOutput],
    last: Option<&SyncRecord>,
    just_synced: bool,
    offline: Option<&str>,
) -> Report {
    let fresh = freshness(last, outputs, just_synced, offline);
    note(&fresh);
    let mut json =
        json!({"utxos": outputs.iter().map(output_json).collect::<Vec<_>>(), "lastSync": last});
    if let Some(why) = offline {
        json["offline"] = json!(why);
    }
    let mut text = String::new();
    for o in outputs {
        let verification = serde_json::to_value(o.verification).ok();
        text.push_str(&format!(
            "{:>20}  {:>28}  {:<15} {}\n",
            o.utxo_pos,
            tokens.fmt(o.token, o.amount),
            status_word(o),
            verification.as_ref().and_then(Value::as_str).unwrap_or("")
        ));
    }
    if outputs.is_empty() {
        text.push_str("no outputs stored\n");
    }
    text.push_str(&format!("({fresh})"));
    Report::new(json, text)
}

/// `plasma history`.
pub(crate) fn history(tokens: &Tokens, entries: &[HistoryEntry]) -> Report {
    let mut text = String::new();
    for e in entries {
        let at = e.at.map_or_else(|| "(time unknown)         ".to_owned(), utc);
        let amount = tokens.fmt(e.token, e.amount);
        let what = match e.kind {
            HistoryKind::Deposit => format!("deposited {amount}"),
            HistoryKind::Sent => format!(
                "sent {amount}{}{}",
                e.counterparty.map(|c| format!(" to {c}")).unwrap_or_default(),
                e.fee.map(|f| format!(" (fee {})", tokens.fmt(e.token, f))).unwrap_or_default()
            ),
            HistoryKind::Received => format!("received {amount}"),
            HistoryKind::Exit => format!("started standard exits of {amount}"),
            HistoryKind::BatchExit => format!("claimed {amount} in batch exits"),
            HistoryKind::InFlightExit => "started an in-flight exit".to_owned(),
            HistoryKind::Piggyback => "piggybacked an in-flight exit".to_owned(),
            HistoryKind::Process => format!("processed exits of {}", tokens.name(e.token)),
            HistoryKind::Payout => format!("batch claims paid: {amount} credited"),
            HistoryKind::Withdraw => format!("withdrew {amount} to L1"),
        };
        let mut refs = Vec::new();
        if !e.positions.is_empty() {
            let list: Vec<String> = e.positions.iter().map(u128::to_string).collect();
            refs.push(format!("output {}", list.join(", ")));
        }
        if let Some(b) = e.bond {
            refs.push(format!("bond {}", tokens.fmt(Address::ZERO, b)));
        }
        if let Some(h) = e.tx_hash {
            refs.push(format!("payment {h}"));
        }
        if let Some(n) = e.blknum {
            refs.push(format!("block {n}"));
        }
        if let Some(h) = e.l1_tx {
            refs.push(format!("L1 tx {h}"));
        }
        text.push_str(&format!("{at}  {what}"));
        if !refs.is_empty() {
            text.push_str(&format!("  [{}]", refs.join("; ")));
        }
        text.push('\n');
    }
    if entries.is_empty() {
        text.push_str("nothing yet\n");
    }
    Report::new(json!({"history": entries}), text)
}

/// Opens the store without L1 (`balance`, `utxos`, `exits`, `history` when L1 is down): it must
/// exist, since a new one would only say "nothing".
pub(crate) fn open_offline(path: &std::path::Path, why: &SdkError) -> Result<ProofStore, SdkError> {
    if !path.exists() {
        return Err(SdkError::Config(format!(
            "{why}; and there is no store at {} to answer from",
            path.display()
        )));
    }
    ProofStore::open(path)
}

/// `plasma exits` without L1: the store's exiting outputs and claims, with the exitable times of
/// the last schedule read from L1, and how old that is.
pub(crate) fn exits_offline(
    tokens: &Tokens,
    store: &ProofStore,
    why: &str,
) -> Result<Report, SdkError> {
    let now = unix_now();
    let saved = store.exit_schedule()?;
    let schedule = saved.as_ref().and_then(|(_, s)| s.as_array().cloned()).unwrap_or_default();
    let timing_of = |kind: &str, pos: u128| {
        schedule.iter().find(|t| t["kind"] == kind && t["utxoPos"] == pos.to_string()).cloned()
    };
    let mut list = Vec::new();
    let mut text = String::new();
    for o in store.all()? {
        let (kind, sched_kind, exitable_at) = match (&o.batch_claim, o.is_exiting()) {
            (Some(c), _) => ("batch", "batchClaim", Some(c.exitable_at)),
            (None, true) => ("standard", "standard", None),
            _ => continue,
        };
        let timing = timing_of(sched_kind, o.utxo_pos);
        let exitable_at =
            exitable_at.or_else(|| timing.as_ref().and_then(|t| t["exitableAt"].as_u64()));
        list.push(json!({
            "kind": kind,
            "utxoPos": o.utxo_pos.to_string(),
            "token": o.token,
            "amount": o.amount.to_string(),
            "state": timing.as_ref().map_or(json!("unknown"), |t| t["state"].clone()),
            "exitableAt": exitable_at,
        }));
        text.push_str(&format!(
            "{kind} exit of output {}: {}, {}\n",
            o.utxo_pos,
            tokens.fmt(o.token, o.amount),
            exitable_at.map_or_else(
                || "processable: unknown".to_owned(),
                |t| format!("processable from {}", when(t, now))
            )
        ));
    }
    if list.is_empty() {
        text.push_str("no exits in the store\n");
    }
    let as_of = saved.as_ref().map(|(at, _)| *at);
    let fresh = format!(
        "L1 unreachable ({why}): from the store; states {}",
        as_of.map_or_else(
            || "never read from L1".to_owned(),
            |at| format!("as read from L1 {} ago", duration(now.saturating_sub(at)))
        )
    );
    note(&fresh);
    text.push_str(&format!("({fresh})"));
    Ok(Report::new(json!({"exits": list, "offline": why, "scheduleAsOf": as_of}), text))
}
