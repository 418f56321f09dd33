//! TLS to PostgreSQL (issue #21): the store's and the lease's connections honour the URL's
//! `sslmode` and `sslrootcert` (operator/src/store/postgres/tls.rs), against a real throwaway
//! server with `ssl = on` and certificates made here by a private CA; and present a client
//! certificate (`sslcert`/`sslkey`) to a server that demands one (`hostssl … cert`).

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use plasma_operator::{Batch, Config, HaNode, PgOptions, Store};
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

/// A client certificate for the database user `cn` signed by `ca`, written to `dir` as
/// `<name>.crt` and `<name>.key` (the key 0600, as libpq and the operator demand).
fn client_files(dir: &tempfile::TempDir, ca: &Ca, cn: &str, name: &str) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (cert_file, key_file) =
        (dir.path().join(format!("{name}.crt")), dir.path().join(format!("{name}.key")));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    set_mode(&key_file, 0o600);
    (cert_file, key_file)
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A server that takes TCP sessions only with a client certificate signed by `ca` (which also
/// signed its own, for 127.0.0.1).
fn client_auth_server(ca: &Ca) -> TempPostgres {
    let (cert, key) = leaf(ca, &["127.0.0.1", "localhost"]);
    TempPostgres::start_tls_client_auth(&cert, &key, &std::fs::read_to_string(&ca.file).unwrap())
        .unwrap()
}

/// The TLS options of a verify-full URL presenting `cert`/`key`.
fn with_cert(ca: &Ca, cert: &std::path::Path, key: &std::path::Path) -> String {
    format!(
        "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        ca.file.display(),
        cert.display(),
        key.display()
    )
}

/// The client certificates' subjects of `app`'s sessions, as the server saw them.
fn client_dns(pg: &TempPostgres, app: &str) -> Vec<String> {
    pg.psql(&format!(
        "SELECT coalesce(s.client_dn, '-') FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name = '{app}'"
    ))
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
fn a_trusted_client_certificate_opens_the_store_and_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca(&dir, "ours");
    let pg = client_auth_server(&ours);
    let (cert, key) = client_files(&dir, &ours, "plasma", "client");
    let store = open(&url(&pg, &with_cert(&ours, &cert, &key))).unwrap();
    // Writes are fenced by the lease row (see store/postgres.rs): as the leader of epoch 7.
    pg.psql("INSERT INTO plasma_leader VALUES (1, 7, 'a', 'http://a', now() + interval '1 hour')")
        .unwrap();
    store.set_fence(7);
    store.apply(&Batch { meta: vec![("tls_client_cert", 7)], ..Batch::default() }).unwrap();
    assert_eq!(store.meta("tls_client_cert").unwrap(), Some(7));
    // The write is in the database, and the session is the certificate's.
    assert_eq!(
        pg.psql("SELECT value FROM meta WHERE key = 'tls_client_cert'").unwrap().trim(),
        "7"
    );
    let dns = client_dns(&pg, "plasma-operator");
    assert!(!dns.is_empty() && dns.iter().all(|d| d == "/CN=plasma"), "{dns:?}");
    drop(store);

    // `require` (the server's certificate unchecked) presents it too.
    let query = format!("sslmode=require&sslcert={}&sslkey={}", cert.display(), key.display());
    open(&url(&pg, &query)).unwrap();
}

#[test]
fn without_a_client_certificate_the_server_refuses_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca(&dir, "ours");
    let pg = client_auth_server(&ours);
    let root = format!("sslrootcert={}", ours.file.display());
    // TLS without a certificate: the server's own refusal reaches the operator's error.
    let err = open(&url(&pg, &format!("sslmode=verify-full&{root}"))).err().unwrap();
    assert!(err.contains("connection requires a valid client certificate"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    // Plain: no pg_hba.conf line takes it.
    let err = open(&url(&pg, "sslmode=disable")).err().unwrap();
    assert!(err.contains("no pg_hba.conf entry"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    // A certificate for another user than the one logging in: `cert` compares the CN.
    let (cert, key) = client_files(&dir, &ours, "mallory", "mallory");
    let err = open(&url(&pg, &with_cert(&ours, &cert, &key))).err().unwrap();
    assert!(err.contains("certificate authentication failed for user \"plasma\""), "{err}");
}

#[test]
fn a_client_certificate_from_an_untrusted_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, stranger) = (ca(&dir, "ours"), ca(&dir, "stranger"));
    let pg = client_auth_server(&ours);
    // Right name, wrong signer: the server ends the handshake.
    let (cert, key) = client_files(&dir, &stranger, "plasma", "stranger");
    let err = open(&url(&pg, &with_cert(&ours, &cert, &key))).err().unwrap();
    assert!(err.contains("UnknownCA"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    assert_eq!(client_dns(&pg, "plasma-operator"), Vec::<String>::new());
}

/// A key file others can read is refused before any connection (libpq's rule), by the store
/// and by the configuration check, naming the file and never showing the key.
#[test]
fn a_key_file_others_can_read_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca(&dir, "ours");
    let pg = client_auth_server(&ours);
    let (cert, key) = client_files(&dir, &ours, "plasma", "client");
    set_mode(&key, 0o644);
    let store_url = url(&pg, &with_cert(&ours, &cert, &key));
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();

    let err = open(&store_url).err().unwrap();
    assert!(err.contains(&key.display().to_string()) && err.contains("0644"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains(key_body), "leaked: {err}");
    let mut config = Config::default();
    config.store.url = Some(store_url.clone());
    let err = config.validate().err().unwrap().to_string();
    assert!(err.contains(&key.display().to_string()) && err.contains("0644"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains(key_body), "leaked: {err}");
    // Nothing reached the server.
    assert_eq!(client_dns(&pg, "plasma-operator"), Vec::<String>::new());

    set_mode(&key, 0o600);
    config.validate().unwrap();
    open(&store_url).unwrap();
}

/// A whole node elects through client-certificate TLS: the lease's, the store probe's and the
/// store's connections all present the certificate (no other way in on this server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_leads_through_client_certificate_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca(&dir, "ours");
    let (cert, key) = client_files(&dir, &ours, "plasma", "client");
    let (server_cert, server_key) = leaf(&ours, &["127.0.0.1", "localhost"]);
    let client_ca = std::fs::read_to_string(&ours.file).unwrap();
    let env = ha_env::env_with(move || {
        TempPostgres::start_tls_client_auth(&server_cert, &server_key, &client_ca)
    })
    .await;
    let store_url = url(&env.pg, &with_cert(&ours, &cert, &key));
    let node = HaNode::start(ha_env::config_at(&env, "a", &store_url)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");
    let pg = &env.pg;
    // The probe runs before each renewal: wait for its connection (a lease or two).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (lease, probe, store) = loop {
        let seen = tokio::task::block_in_place(|| {
            (
                client_dns(pg, "plasma-operator-lease"),
                client_dns(pg, "plasma-operator-probe"),
                client_dns(pg, "plasma-operator"),
            )
        });
        if !seen.1.is_empty() || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    node.stop().await;
    for (what, dns) in [("lease", lease), ("probe", probe), ("store", store)] {
        assert!(!dns.is_empty() && dns.iter().all(|d| d == "/CN=plasma"), "{what}: {dns:?}");
    }
}
