//! TLS to PostgreSQL (issue #21): the store's and the lease's connections honour the URL's
//! `sslmode` and `sslrootcert` (operator/src/store/postgres/tls.rs), against a real throwaway
//! server with `ssl = on` and certificates made here by a private CA.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use plasma_operator::{HaNode, PgOptions, Store};
use plasma_test_postgres::TempPostgres;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::{path::PathBuf, time::Duration};

#[path = "common/ha.rs"]
mod ha_env;

/// A private CA: its certificate (PEM, written to a file) and what signs with it.
struct Ca {
    file: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(dir: &tempfile::TempDir, name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let file = dir.path().join(format!("{name}.pem"));
    std::fs::write(&file, cert.pem()).unwrap();
    Ca { file, issuer: Issuer::new(params, key) }
}

/// A server certificate for `names`, signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The server's URL with a password (trust authentication ignores it; it must never show) and
/// `query`.
fn url(pg: &TempPostgres, query: &str) -> String {
    format!("{}?{query}", pg.url().replacen("postgres://plasma@", "postgres://plasma:hunter2@", 1))
}

fn open(url: &str) -> Result<Store, String> {
    Store::open_postgres(url, &PgOptions::pool(1)).map_err(|e| e.to_string())
}

/// How many sessions of `application_name` are on TLS, and how many in all.
fn sessions(pg: &TempPostgres, app: &str) -> (u32, u32) {
    let out = pg
        .psql(&format!(
            "SELECT count(*) FILTER (WHERE s.ssl) || ' ' || count(*) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = '{app}'"
        ))
        .unwrap();
    let mut it = out.split_whitespace().map(|n| n.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn sslmode_is_honoured_and_a_wrong_ca_or_name_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, stranger) = (ca(&dir, "ours"), ca(&dir, "stranger"));
    // The certificate names a host the tests do not dial (127.0.0.1): verify-full must see it.
    let (cert, key) = leaf(&ours, &["db.internal"]);
    let pg = TempPostgres::start_tls(&cert, &key).unwrap();

    // require: encrypted (the certificate is not checked, as libpq).
    let store = open(&url(&pg, "sslmode=require")).unwrap();
    let (tls, all) = sessions(&pg, "plasma-operator");
    assert!(all >= 1 && tls == all, "require: {tls} of {all} sessions on TLS");
    drop(store);

    // verify-ca with our CA: the chain checks out, the name is not compared.
    let root = format!("sslrootcert={}", ours.file.display());
    open(&url(&pg, &format!("sslmode=verify-ca&{root}"))).unwrap();

    // verify-full with our CA, dialled by another name than the certificate's: refused.
    let err = open(&url(&pg, &format!("sslmode=verify-full&{root}"))).err().unwrap();
    assert!(err.contains("certificate not valid for name"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");

    // verify-full (and verify-ca) with a CA that did not sign it: refused, saying why.
    let wrong = format!("sslrootcert={}", stranger.file.display());
    for mode in ["verify-full", "verify-ca", "require"] {
        let err = open(&url(&pg, &format!("sslmode={mode}&{wrong}"))).err().unwrap();
        assert!(err.contains("UnknownIssuer"), "{mode}: {err}");
        assert!(err.contains("TLS"), "{mode}: {err}");
        assert!(!err.contains("hunter2"), "the password leaked: {err}");
    }

    // A CA file that is not there, an unknown mode: clear errors before any connection.
    let err = open(&url(&pg, "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).err().unwrap();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    let err = open(&url(&pg, "sslmode=verify-everything")).err().unwrap();
    assert!(err.contains("verify-everything") && !err.contains("hunter2"), "{err}");

    // disable: plain even though the server offers TLS.
    let before = sessions(&pg, "plasma-operator");
    let store = open(&url(&pg, "sslmode=disable")).unwrap();
    let after = sessions(&pg, "plasma-operator");
    assert_eq!(after.0, before.0, "disable opened a TLS session");
    assert!(after.1 > before.1);
    drop(store);
}

#[test]
fn a_server_without_tls_is_refused_by_require_and_used_plain_by_prefer() {
    let pg = TempPostgres::start().unwrap();
    let err = open(&url(&pg, "sslmode=require")).err().unwrap();
    assert!(err.to_lowercase().contains("tls"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    // prefer (also the default): today's behaviour, plain when TLS is not offered.
    open(&url(&pg, "sslmode=prefer")).unwrap();
    open(pg.url()).unwrap();
}

/// The lease's own connection (the election thread) uses the same TLS as the store's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_connection_is_on_tls_too() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca(&dir, "ours");
    let (cert, key) = leaf(&ours, &["127.0.0.1", "localhost"]);
    let env = ha_env::env_with(move || TempPostgres::start_tls(&cert, &key)).await;
    let store_url =
        url(&env.pg, &format!("sslmode=verify-full&sslrootcert={}", ours.file.display()));
    let node = HaNode::start(ha_env::config_at(&env, "a", &store_url)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");
    let pg = &env.pg;
    let (lease, store) = tokio::task::block_in_place(|| {
        (sessions(pg, "plasma-operator-lease"), sessions(pg, "plasma-operator"))
    });
    node.stop().await;
    assert!(lease.1 >= 1 && lease.0 == lease.1, "lease sessions on TLS: {lease:?}");
    assert!(store.1 >= 1 && store.0 == store.1, "store sessions on TLS: {store:?}");
}
