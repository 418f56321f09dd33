//! `plasma consolidate`, `plasma payment-package` and `plasma in-flight-exit --package`: the
//! SDK's consolidation and recipient in-flight exits on the command line (thin: each calls one
//! `Wallet` method and says what it did).

use super::output::{Report, Tokens, unix_now, when};
use alloy::primitives::{Address, B256};
use plasma_sdk::{
    ConsolidateOptions, PaymentPackage, SdkError, Wallet,
    units::{self, Unit},
};
use serde_json::json;
use std::{fmt::Write as _, path::Path, time::Duration};

fn to_json(v: &impl serde::Serialize) -> Result<serde_json::Value, SdkError> {
    serde_json::to_value(v).map_err(|e| SdkError::Config(format!("JSON: {e}")))
}

/// `plasma consolidate [--token T] [--fee F] [--timeout S]`: merges every spendable output of
/// the token into one (`Wallet::consolidate_with`), after a sync.
pub(crate) async fn consolidate(
    wallet: &Wallet,
    tokens: &mut Tokens,
    token: Option<Address>,
    fee: &str,
    timeout: u64,
) -> Result<Report, SdkError> {
    let t = token.unwrap_or(Address::ZERO);
    let unit = match token {
        None => Unit::Ether,
        Some(t) => Unit::Token { decimals: tokens.learn(wallet, t).await?.decimals },
    };
    let fee = units::parse_value(fee, unit).map_err(|e| SdkError::Config(format!("--fee: {e}")))?;
    wallet.sync().await?;
    let options = ConsolidateOptions {
        timeout: Duration::from_secs(timeout),
        ..ConsolidateOptions::default()
    };
    let r = wallet.consolidate_with(t, fee, options).await?;
    let mut text = format!(
        "merged {} outputs of {} ({}) into one in {} payment(s) over {} round(s); fees {}\n  \
         output {}: {}\n",
        r.outputs_before,
        tokens.name(t),
        tokens.fmt(t, r.value_before),
        r.payments.len(),
        r.rounds,
        tokens.fmt(t, r.fees),
        r.output,
        tokens.fmt(t, r.amount),
    );
    for p in &r.payments {
        let _ = writeln!(
            text,
            "  round {}: {} inputs -> {} in block {} (payment {})",
            p.round,
            p.inputs.len(),
            tokens.fmt(t, p.amount),
            p.blknum,
            p.tx_hash
        );
    }
    Ok(Report::new(to_json(&r)?, text))
}

/// `plasma payment-package <hash> [--out FILE]`: what the sender hands the recipient of a payment
/// whose block is withheld (`Wallet::payment_package`), printed or written to a file.
pub(crate) fn payment_package(
    wallet: &Wallet,
    hash: B256,
    out: Option<&Path>,
) -> Result<Report, SdkError> {
    let pkg = wallet.payment_package(hash)?;
    let Some(path) = out else {
        // The package itself: `plasma payment-package H > pkg.json` writes the file.
        let json = to_json(&pkg)?;
        let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string());
        return Ok(Report::new(json, text));
    };
    let body =
        serde_json::to_string_pretty(&pkg).map_err(|e| SdkError::Config(format!("JSON: {e}")))?;
    std::fs::write(path, body + "\n")
        .map_err(|e| SdkError::Config(format!("writing {}: {e}", path.display())))?;
    Ok(Report::new(
        json!({"txHash": hash, "written": path.display().to_string(), "inputs": pkg.inputs.len()}),
        format!(
            "wrote the package of payment {hash} to {}: hand it to the recipient, who can exit \
             the payment in flight with `plasma in-flight-exit --package FILE` (it holds no \
             secret)",
            path.display()
        ),
    ))
}

/// `plasma in-flight-exit --package FILE [--force]`: the recipient's in-flight exit
/// (`Wallet::in_flight_exit_from`): checked against L1, started, this wallet's outputs
/// piggybacked.
pub(crate) async fn in_flight_exit_from(
    wallet: &Wallet,
    tokens: &mut Tokens,
    file: &Path,
    force: bool,
) -> Result<Report, SdkError> {
    let body = std::fs::read_to_string(file)
        .map_err(|e| SdkError::Config(format!("reading {}: {e}", file.display())))?;
    let pkg: PaymentPackage = serde_json::from_str(&body)
        .map_err(|e| SdkError::BadPackage(format!("{}: {e}", file.display())))?;
    let done = wallet.in_flight_exit_from(&pkg, force).await?;
    tokens.learn_all(wallet, done.amounts.iter().map(|(t, _)| *t)).await;
    let eth = Address::ZERO;
    let now = unix_now();
    let mut text = match done.start_tx {
        Some(tx) => {
            format!(
                "started the in-flight exit of payment {} as its recipient\n  L1 tx {tx}\n",
                done.exit_id
            )
        }
        None => format!(
            "a party had started the in-flight exit of payment {}: joined it\n",
            done.exit_id
        ),
    };
    for (j, tx) in &done.piggybacks {
        let _ = writeln!(text, "  piggybacked output {j} in L1 tx {tx}");
    }
    for w in &done.warnings {
        let _ = writeln!(text, "  warning: {w}");
    }
    for (t, v) in &done.amounts {
        let _ = writeln!(text, "  pays you {} if it settles canonical", tokens.fmt(*t, *v));
    }
    let _ = writeln!(
        text,
        "  bonds locked: {} (returned minus the processing bounty unless challenged)\n  can be \
         processed from {}",
        tokens.fmt(eth, done.bonds),
        when(done.exitable_at, now)
    );
    let schedule: Vec<_> = match wallet.exit_schedule().await {
        Ok(rows) => rows
            .into_iter()
            .filter(|r| r.kind == "inFlight" && r.exit_id == done.exit_id.to_string())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "exit schedule unavailable");
            Vec::new()
        }
    };
    Ok(Report::new(
        json!({
            "exitId": done.exit_id,
            "l1Tx": done.start_tx,
            "piggybacks": done.piggybacks.iter().map(|(j, tx)| json!({"output": j, "l1Tx": tx})).collect::<Vec<_>>(),
            "amounts": done.amounts.iter().map(|(t, v)| json!({"token": t, "amount": v.to_string()})).collect::<Vec<_>>(),
            "bonds": done.bonds.to_string(),
            "exitableAt": done.exitable_at,
            "schedule": schedule,
            "warnings": done.warnings,
        }),
        text,
    ))
}
