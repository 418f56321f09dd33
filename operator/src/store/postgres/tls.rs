//! TLS to PostgreSQL (rustls, never OpenSSL), for the store's connections and the lease's.
//!
//! The URL's `sslmode` is honoured as libpq does, since that is what an operator's database
//! administrator will write (docs/operations.md, "TLS to PostgreSQL"):
//!
//! | `sslmode`           | TLS                          | the server's certificate                    |
//! |---------------------|------------------------------|---------------------------------------------|
//! | `disable`           | never                        | —                                           |
//! | `prefer` (default)  | if the server offers it      | not checked (as libpq)                      |
//! | `require`           | always, else refused         | not checked; with `sslrootcert`: `verify-ca` |
//! | `verify-ca`         | always, else refused         | chain checked, not the host name            |
//! | `verify-full`       | always, else refused         | chain and host name checked                 |
//!
//! Trusted for `verify-*`: the `sslrootcert` file if the URL names one (only it, as libpq; the
//! value `system` means Mozilla's roots), else Mozilla's roots plus `PLASMA_CA_FILE`.
//!
//! The attacker's view: `prefer` and `require` only stop a passive eavesdropper — anyone on the
//! path can present a certificate of their own and read the session (the password too, unless
//! the server uses SCRAM: SCRAM never sends it). A database reached over any network but
//! loopback should be `verify-full`; the operator logs a warning at open when it is not.
//! A certificate or handshake failure is an error naming the cause (`invalid peer certificate:
//! UnknownIssuer`, `certificate not valid for name …`) and the URL without its password; it is never retried
//! without TLS.
//!
//! Client certificates (`pg_hba.conf`'s `cert` method, `clientcert=verify-full`): `sslcert=` and
//! `sslkey=` name a PEM certificate chain and its private key (PKCS#8, PKCS#1/RSA or SEC1/EC,
//! unencrypted), both or neither — libpq's `~/.postgresql/postgresql.crt` defaults are not used,
//! so what is presented is only ever what the URL names. They are read when the URL is parsed
//! (configuration check, store open, lease start; the store's again when a node takes the
//! lead), so a missing, unreadable, mismatched or too-open key file stops the operator at
//! start, not at its first failover. Every connection made from the URL presents it: the
//! store's pool, the lease's and the store probe's. What the key file holds is never put in an
//! error or a log line: only its path and what is wrong with it.

use ::postgres::{
    Config, Socket,
    config::SslMode as WireMode,
    tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream},
};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{
        CertificateDer, PrivateKeyDer, ServerName, UnixTime,
        pem::{self, PemObject},
    },
};
use std::{
    future::Future,
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The libpq `sslmode`s the operator understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if offered, unverified.
    Prefer,
    /// TLS or nothing, unverified (or `verify-ca` with a `sslrootcert`).
    Require,
    /// TLS, the chain verified.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// Whether the server's certificate is checked at all.
    pub(crate) fn verifies(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }
}

/// Why a PostgreSQL URL's TLS options are unusable (the message never carries the URL).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSetupError {
    /// `sslmode=<value>` is none of libpq's.
    #[error("sslmode={0:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    Mode(String),
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL could not be parsed once the TLS options were taken out (the parser's message
    /// names the part it choked on, never the password).
    #[error("not a valid PostgreSQL URL: {0}")]
    Url(String),
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Rustls(String),
    /// `channel_binding=require`: the TLS here offers no channel binding, so every connection
    /// would fail at authentication; refused at start instead.
    #[error(
        "channel_binding=require is not supported (the operator's TLS offers no channel \
         binding); use a client certificate (sslcert/sslkey) or SCRAM without it"
    )]
    ChannelBindingRequired,
    /// One of `sslcert` and `sslkey` without the other: a certificate is useless without its
    /// key, and no default file is looked for (libpq's `~/.postgresql/…` are not used).
    #[error("{given} is set but {missing} is not: a client certificate needs both")]
    ClientCertPair {
        /// The option given.
        given: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// A client certificate with `sslmode=disable`: it could never be presented, and a server
    /// that asks for it refuses every plain connection.
    #[error("sslcert/sslkey need TLS, but sslmode=disable: use require or verify-full")]
    ClientCertWithoutTls,
    /// The client certificate file (`sslcert`) could not be read or holds no certificate.
    #[error("client certificate file {path}: {reason}")]
    ClientCertFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key file (`sslkey`) could not be read or holds no usable key. The reason
    /// never quotes the file.
    #[error("client key file {path}: {reason}")]
    ClientKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its contents).
        reason: String,
    },
    /// The private key file can be read by others than its owner (see [`check_key_file`]).
    #[error(
        "client key file {path} has permissions {mode:04o}: others than its owner can use it; \
         it must be {limit:04o} or less (as libpq demands): chmod {limit:o} {path}"
    )]
    KeyFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The loosest allowed: 0600 for a file of the user the operator runs as, 0640 for
        /// one of root's.
        limit: u32,
    },
    /// The key is not the certificate's: the server would refuse the handshake.
    #[error("client key file {key} does not belong to the certificate in {cert}")]
    ClientKeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// A URL's connection settings with its TLS applied: `config` for `postgres`, `tls` to pass to
/// `Config::connect`.
pub(crate) struct PgConnect {
    pub(crate) config: Config,
    pub(crate) tls: MakeRustls,
    pub(crate) mode: SslMode,
}

/// Parses `url`, taking out `sslmode`, `sslrootcert`, `sslcert` and `sslkey` (which `postgres`
/// does not know in full) and building the TLS they ask for.
pub(crate) fn parse(url: &str) -> Result<PgConnect, TlsSetupError> {
    let (rest, TlsParams { mode, rootcert, cert, key }) = take_tls_params(url)?;
    let mut config = rest.parse::<Config>().map_err(|e| TlsSetupError::Url(e.to_string()))?;
    if config.get_channel_binding() == ::postgres::config::ChannelBinding::Require {
        return Err(TlsSetupError::ChannelBindingRequired);
    }
    let mode = match mode {
        Some(m) => SslMode::parse(&m).ok_or(TlsSetupError::Mode(m))?,
        // The key=value form: `postgres` parsed its own sslmode (disable, prefer, require).
        None => match config.get_ssl_mode() {
            WireMode::Disable => SslMode::Disable,
            WireMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        },
    };
    // `require` with a root certificate checks the chain, as libpq does.
    let mode =
        if mode == SslMode::Require && rootcert.is_some() { SslMode::VerifyCa } else { mode };
    config.ssl_mode(match mode {
        SslMode::Disable => WireMode::Disable,
        SslMode::Prefer => WireMode::Prefer,
        _ => WireMode::Require,
    });
    let client = match (cert, key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(TlsSetupError::ClientCertPair { given: "sslcert", missing: "sslkey" });
        }
        (None, Some(_)) => {
            return Err(TlsSetupError::ClientCertPair { given: "sslkey", missing: "sslcert" });
        }
        (Some(_), Some(_)) if mode == SslMode::Disable => {
            return Err(TlsSetupError::ClientCertWithoutTls);
        }
        (Some(cert), Some(key)) => Some(ClientCert::load(Path::new(&cert), Path::new(&key))?),
    };
    let tls = MakeRustls::new(mode, rootcert.as_deref(), client)?;
    Ok(PgConnect { config, tls, mode })
}

/// A client certificate chain and its private key, read and checked.
struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl ClientCert {
    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsSetupError> {
        let cert_err =
            |reason: String| TlsSetupError::ClientCertFile { path: cert_path.to_owned(), reason };
        let chain = CertificateDer::pem_file_iter(cert_path)
            .map_err(|e| cert_err(pem_reason(&e)))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(pem_reason(&e)))?;
        if chain.is_empty() {
            return Err(cert_err("no PEM certificate in it".into()));
        }
        check_key_file(key_path)?;
        let key =
            PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsSetupError::ClientKeyFile {
                path: key_path.to_owned(),
                reason: match e {
                    pem::Error::NoItemsFound => "no private key in it (PEM PKCS#8, PKCS#1/RSA or \
                                                 SEC1/EC, unencrypted: sslpassword is not \
                                                 supported)"
                        .into(),
                    other => pem_reason(&other),
                },
            })?;
        Ok(Self { chain, key, cert_path: cert_path.to_owned(), key_path: key_path.to_owned() })
    }
}

/// A PEM reading error without the file's text: the parser's own messages quote the line it
/// choked on, which in a key file may be key material.
fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => "nothing of the expected kind in it".into(),
        pem::Error::MissingSectionEnd { .. } => "not valid PEM: a section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "not valid PEM: a malformed BEGIN line".into(),
        pem::Error::Base64Decode(_) => "not valid PEM: bad base64 in a section".into(),
        _ => "not valid PEM".into(),
    }
}

/// Refuses a private key file that others can read, with libpq's rule (`fe-secure-openssl.c`):
/// owned by the user we run as, no group or other bits at all (0600 or less); owned by root,
/// at most group read (0640: a key shared through a group, as Debian's `ssl-cert` does). Why:
/// whoever reads the key logs in to the chain's database as the operator — it can rewrite the
/// ledger the operator commits to L1, or take the lease — so a key left readable by every
/// account on the machine is a hole the operator should not start on; and an administrator
/// coming from `psql` expects the same refusal for the same file. Checked before the file is
/// read, at start, so a deployment mistake is found then and not at the first failover.
#[cfg(unix)]
fn check_key_file(path: &Path) -> Result<(), TlsSetupError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| TlsSetupError::ClientKeyFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(TlsSetupError::ClientKeyFile {
            path: path.to_owned(),
            reason: "not a regular file".into(),
        });
    }
    let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
    // Where the effective uid cannot be learnt, every file not owned by root is judged as ours
    // (the stricter reading).
    let ours = effective_uid().map_or(owner != 0, |me| me == owner);
    // libpq's masks: no group or other bit for our own file; for root's, group read only.
    let (forbidden, limit) = if ours {
        (0o077, 0o600)
    } else if owner == 0 {
        (0o037, 0o640)
    } else {
        // Someone else's (not root's) file that we can read: libpq lets it through.
        return Ok(());
    };
    if mode & forbidden != 0 {
        return Err(TlsSetupError::KeyFilePermissions { path: path.to_owned(), mode, limit });
    }
    Ok(())
}

/// No permission bits to check elsewhere (Windows has ACLs, as libpq skips the check there).
#[cfg(not(unix))]
fn check_key_file(_: &Path) -> Result<(), TlsSetupError> {
    Ok(())
}

/// The process's effective uid, from `/proc/self/status` (std has no `geteuid`, and the
/// workspace forbids `unsafe`); `None` off Linux.
#[cfg(unix)]
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    // Real, effective, saved, filesystem.
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A client-side error with its causes: `postgres::Error`'s own text says only "error
/// performing TLS handshake", the reason (`invalid peer certificate: UnknownIssuer`) is its
/// source. Sources are I/O and TLS errors: they never carry the configuration or its password.
pub(crate) fn with_causes(e: &::postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Whether every host `config` names is this machine (a Unix socket, `localhost`, a loopback
/// address): the one case where an unverified session is not readable by the network.
pub(crate) fn is_loopback(config: &Config) -> bool {
    use ::postgres::config::Host;
    !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|h| match h {
            Host::Tcp(name) => {
                name == "localhost"
                    || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        })
}

/// The TLS options of a URL's query, percent-decoded.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    mode: Option<String>,
    rootcert: Option<String>,
    /// `sslcert`; an empty value counts as unset (as libpq).
    cert: Option<String>,
    /// `sslkey`; an empty value counts as unset (as libpq).
    key: Option<String>,
}

/// Splits `sslmode`, `sslrootcert`, `sslcert` and `sslkey` off a `postgres://` URL's query
/// (percent-decoded); other forms are returned whole (the `postgres` parser then refuses the
/// key/value form's `sslcert` as an unknown option, and the configuration refuses that form).
fn take_tls_params(url: &str) -> Result<(String, TlsParams), TlsSetupError> {
    // The query starts at the first `?` AFTER the credentials (a password may hold a `?`): the
    // client's own cut, shared with the redaction (`store::PgUrlParts`).
    let Some(parts) = crate::store::PgUrlParts::split(url) else {
        return Ok((url.to_owned(), TlsParams::default()));
    };
    let Some(query) = parts.query else { return Ok((url.to_owned(), TlsParams::default())) };
    let base = parts.without_query();
    let (mut params, mut kept) = (TlsParams::default(), Vec::new());
    let file = |v: &str| Ok::<_, TlsSetupError>(Some(percent_decode(v)?).filter(|f| !f.is_empty()));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => params.mode = Some(percent_decode(v)?),
            "sslrootcert" => params.rootcert = Some(percent_decode(v)?),
            "sslcert" => params.cert = file(v)?,
            "sslkey" => params.key = file(v)?,
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, params))
}

fn percent_decode(s: &str) -> Result<String, TlsSetupError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or(TlsSetupError::Url(format!("bad percent-encoding in {s:?}")))?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .map_err(|_| TlsSetupError::Url(format!("bad percent-encoding in {s:?}")))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| TlsSetupError::Url(format!("bad percent-encoding in {s:?}")))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The trust anchors for `verify-*`.
fn roots(rootcert: Option<&str>) -> Result<rustls::RootCertStore, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut files: Vec<PathBuf> = Vec::new();
    match rootcert {
        Some("system") => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => files.push(path.into()),
        None => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(p) =
                std::env::var_os(plasma_contracts::l1::CA_FILE_ENV).filter(|p| !p.is_empty())
            {
                files.push(p.into());
            }
        }
    }
    for path in files {
        add_pem(&mut roots, &path)?;
    }
    Ok(roots)
}

fn add_pem(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), TlsSetupError> {
    let err = |reason: String| TlsSetupError::CaFile { path: path.to_owned(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Accepts any certificate (`prefer`, `require`) but still checks the handshake's signatures,
/// so the session is at least bound to the key the server showed.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first, the name last: a name error means the chain passed.
        match self.0.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `postgres`'s TLS over rustls.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MakeRustls")
    }
}

impl MakeRustls {
    fn new(
        mode: SslMode,
        rootcert: Option<&str>,
        client: Option<ClientCert>,
    ) -> Result<Self, TlsSetupError> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        let builder = if mode.verifies() {
            let roots = Arc::new(roots(rootcert)?);
            if mode == SslMode::VerifyFull {
                builder.with_root_certificates(roots)
            } else {
                let webpki =
                    rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                        .build()
                        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            }
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Unverified(provider)))
        };
        let config = match client {
            None => builder.with_no_client_auth(),
            Some(ClientCert { chain, key, cert_path, key_path }) => {
                builder.with_client_auth_cert(chain, key).map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => {
                        TlsSetupError::ClientKeyMismatch { cert: cert_path, key: key_path }
                    }
                    // rustls's reasons name the key's kind, never its bytes.
                    other => {
                        TlsSetupError::ClientKeyFile { path: key_path, reason: other.to_string() }
                    }
                })?
            }
        };
        Ok(Self { config: Arc::new(config) })
    }
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        // A bad name fails only if TLS is actually started (a Unix socket passes "" here).
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| format!("the host {domain:?} is no name for TLS: {e}"));
        Ok(RustlsConnect { config: self.config.clone(), name })
    }
}

/// One handshake.
pub(crate) struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(io::Error::other)?;
            let stream =
                tokio_rustls::TlsConnector::from(self.config).connect(name, stream).await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// A TLS session to the server.
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (the server accepts it unless it demands
        // `channel_binding=require` of its clients, which the operator does not support yet).
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_options_are_taken_out_of_the_url_and_the_rest_kept() {
        let (rest, p) = take_tls_params(
            "postgres://u:p@h:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&sslcert=%2Ftmp%2Fc.pem&sslkey=/tmp/c.key",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(p.mode.as_deref(), Some("verify-full"));
        assert_eq!(p.rootcert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(p.cert.as_deref(), Some("/tmp/c.pem"));
        assert_eq!(p.key.as_deref(), Some("/tmp/c.key"));
        let (rest, p) = take_tls_params("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!((rest.as_str(), p.mode.as_deref()), ("postgres://h/db", Some("disable")));
        assert_eq!(
            take_tls_params("host=h sslmode=require").unwrap(),
            ("host=h sslmode=require".into(), TlsParams::default())
        );
    }

    #[test]
    fn the_query_starts_after_the_credentials_as_the_client_cuts_it() {
        // A password holding `?`, `/`, `#` and `&`: the query is the one after the `@`.
        let url =
            "postgres://u:a?b/c#d&sslmode=disable@h:5432/db?sslmode=require&application_name=x";
        let (rest, p) = take_tls_params(url).unwrap();
        assert_eq!(rest, "postgres://u:a?b/c#d&sslmode=disable@h:5432/db?application_name=x");
        assert_eq!((p.mode.as_deref(), p.rootcert), (Some("require"), None));
        // What is left is what the client parses: the whole password, the host after the `@`.
        let parsed = parse(url).unwrap();
        assert_eq!(parsed.mode, SslMode::Require);
        assert_eq!(parsed.config.get_password(), Some(&b"a?b/c#d&sslmode=disable"[..]));
        assert_eq!(parsed.config.get_dbname(), Some("db"));
        // No query after the credentials: nothing is taken out, the URL is passed whole.
        let (rest, p) = take_tls_params("postgres://u:p?sslmode=disable@h/db").unwrap();
        assert_eq!((rest.as_str(), p.mode), ("postgres://u:p?sslmode=disable@h/db", None));
    }

    /// The TLS options are found whatever the password holds (A21b-1's splitter): the query is
    /// the one after the credentials, and the password reaches the client whole.
    #[test]
    fn the_tls_options_are_found_after_any_password() {
        for pw in crate::store::tests::awkward_passwords(500) {
            if pw.contains('@') {
                continue; // the client itself ends the password there
            }
            let url = format!(
                "postgres://op:{pw}@db.example:5432/plasma?sslmode=disable&application_name=op"
            );
            let (rest, p) = take_tls_params(&url).unwrap();
            assert_eq!(p.mode.as_deref(), Some("disable"), "{url:?}");
            assert_eq!(
                rest,
                format!("postgres://op:{pw}@db.example:5432/plasma?application_name=op")
            );
            if !pw.contains('%') {
                let parsed = parse(&url).unwrap();
                assert_eq!(parsed.mode, SslMode::Disable);
                assert_eq!(parsed.config.get_password(), Some(pw.as_bytes()), "{url:?}");
                assert_eq!(parsed.config.get_dbname(), Some("plasma"), "{url:?}");
            }
        }
    }

    #[test]
    fn modes_map_as_libpq_and_unknown_ones_are_refused() {
        assert_eq!(parse("postgres://h/db").unwrap().mode, SslMode::Prefer);
        assert_eq!(parse("postgres://h/db?sslmode=require").unwrap().mode, SslMode::Require);
        assert_eq!(parse("host=h sslmode=disable").unwrap().mode, SslMode::Disable);
        assert!(matches!(
            parse("postgres://h/db?sslmode=verify-everything"),
            Err(TlsSetupError::Mode(m)) if m == "verify-everything"
        ));
        // Channel binding is not offered: demanding it could never connect.
        assert!(matches!(
            parse("postgres://h/db?sslmode=require&channel_binding=require"),
            Err(TlsSetupError::ChannelBindingRequired)
        ));
        parse("postgres://h/db?channel_binding=prefer").unwrap();
        // A CA file that is not there is a clear error, not a silent fallback.
        let err = parse("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    /// A client certificate (CN `plasma`) and its key, self-signed, written to `dir` (the key
    /// 0600): (certificate file, key file).
    fn client_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "plasma");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_file, key_file) =
            (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        write_key(&key_file, &key.serialize_pem());
        (cert_file, key_file)
    }

    fn write_key(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    fn with_client(mode: &str, cert: &Path, key: &Path) -> Result<PgConnect, TlsSetupError> {
        parse(&format!(
            "postgres://u:hunter2@h/db?sslmode={mode}&sslcert={}&sslkey={}",
            cert.display(),
            key.display()
        ))
    }

    #[test]
    fn client_certificate_options_come_both_or_neither_and_need_tls() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = client_files(dir.path(), "client");
        let only_cert = parse(&format!("postgres://h/db?sslcert={}", cert.display()));
        assert!(
            matches!(
                only_cert,
                Err(TlsSetupError::ClientCertPair { given: "sslcert", missing: "sslkey" })
            ),
            "{:?}",
            only_cert.err()
        );
        let only_key = parse(&format!("postgres://h/db?sslkey={}", key.display()));
        assert!(
            matches!(only_key, Err(TlsSetupError::ClientCertPair { given: "sslkey", .. })),
            "{:?}",
            only_key.err()
        );
        // Empty values are unset, as libpq: neither given.
        assert_eq!(parse("postgres://h/db?sslcert=&sslkey=").unwrap().mode, SslMode::Prefer);
        // A certificate that could never be presented is refused, not ignored.
        assert!(matches!(
            with_client("disable", &cert, &key),
            Err(TlsSetupError::ClientCertWithoutTls)
        ));
        // Every mode that speaks TLS takes it (the server's checks are the integration tests').
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(
                with_client(mode, &cert, &key).unwrap().mode,
                SslMode::parse(mode).unwrap(),
                "{mode}"
            );
        }
    }

    #[test]
    fn a_missing_unreadable_or_mismatched_client_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = client_files(dir.path(), "client");
        let (_, other_key) = client_files(dir.path(), "other");
        let missing = dir.path().join("nope.pem");

        let err = with_client("require", &missing, &key).err().unwrap();
        assert!(matches!(&err, TlsSetupError::ClientCertFile { path, .. } if *path == missing));
        assert!(err.to_string().contains("nope.pem"), "{err}");

        let err = with_client("require", &cert, &missing).err().unwrap();
        assert!(matches!(&err, TlsSetupError::ClientKeyFile { path, .. } if *path == missing));
        assert!(err.to_string().contains("nope.pem") && !err.to_string().contains("hunter2"));

        // The certificate where the key should be, and the other way round.
        let err = with_client("require", &key, &cert).err().unwrap();
        assert!(
            matches!(&err, TlsSetupError::ClientCertFile { path, .. } if *path == key),
            "{err}"
        );
        let cert_as_key = dir.path().join("cert-as-key.pem");
        write_key(&cert_as_key, &std::fs::read_to_string(&cert).unwrap());
        let err = with_client("require", &cert, &cert_as_key).err().unwrap();
        assert!(
            matches!(&err, TlsSetupError::ClientKeyFile { path, .. } if *path == cert_as_key),
            "{err}"
        );
        assert!(err.to_string().contains("no private key"), "{err}");

        // Someone else's key.
        let err = with_client("verify-full", &cert, &other_key).err().unwrap();
        assert!(
            matches!(&err, TlsSetupError::ClientKeyMismatch { cert: c, key: k }
                if *c == cert && *k == other_key),
            "{err}"
        );
    }

    /// The key in the encodings libpq users hold: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE
    /// KEY`) and SEC1 (`EC PRIVATE KEY`), each loaded and matched to its certificate.
    #[test]
    fn pkcs8_pkcs1_and_sec1_keys_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        for (alg, label) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "EC PRIVATE KEY"),
            (&rcgen::PKCS_RSA_SHA256, "RSA PRIVATE KEY"),
        ] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, "plasma");
            let cert = params.self_signed(&key).unwrap();
            let cert_file = dir.path().join("c.crt");
            std::fs::write(&cert_file, cert.pem()).unwrap();
            let key_file = dir.path().join("c.key");
            write_key(&key_file, &key.serialize_pem());
            with_client("require", &cert_file, &key_file).unwrap();
            // PKCS#8's privateKey OCTET STRING is the PKCS#1 or SEC1 structure itself.
            let der = key.serialize_der();
            write_key(&key_file, &pem_text(label, pkcs8_inner(&der)));
            with_client("require", &cert_file, &key_file)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
        }
    }

    /// `PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET
    /// STRING, … }`: the privateKey's contents.
    fn pkcs8_inner(der: &[u8]) -> &[u8] {
        fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
            let (tag, first) = (b[0], b[1] as usize);
            let (len, at) = if first < 0x80 {
                (first, 2)
            } else {
                let n = first & 0x7f;
                (b[2..2 + n].iter().fold(0, |l, x| (l << 8) | *x as usize), 2 + n)
            };
            (tag, &b[at..at + len], &b[at + len..])
        }
        let (_, seq, _) = tlv(der);
        let (_, _, rest) = tlv(seq); // version
        let (_, _, rest) = tlv(rest); // algorithm
        let (tag, key, _) = tlv(rest);
        assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
        key
    }

    fn pem_text(label: &str, der: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = String::new();
        for chunk in der.chunks(3) {
            let n =
                chunk.iter().enumerate().fold(0u32, |n, (i, x)| n | u32::from(*x) << (16 - 8 * i));
            for i in 0..4 {
                b64.push(if i <= chunk.len() {
                    ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        let body: Vec<&str> =
            b64.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", body.join("\n"))
    }

    /// A broken key file is described, never quoted: the parser's own messages would repeat the
    /// line it choked on.
    #[test]
    fn a_broken_key_file_is_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = client_files(dir.path(), "client");
        let bad = dir.path().join("bad.key");
        for text in [
            "-----BEGIN PRIVATE KEY-----\nhunter2hunter2!!\n-----END PRIVATE KEY-----\n",
            "-----BEGIN PRIVATE KEY hunter2\nMIIB\n",
            "-----BEGIN PRIVATE KEY-----\nMIIBhunter2\n",
            "hunter2",
        ] {
            write_key(&bad, text);
            let err = with_client("require", &cert, &bad).err().unwrap();
            assert!(matches!(&err, TlsSetupError::ClientKeyFile { .. }), "{text:?}: {err}");
            assert!(!err.to_string().contains("hunter2"), "quoted: {err}");
            assert!(!format!("{err:?}").contains("hunter2"), "quoted: {err:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_as_libpq_does() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = client_files(dir.path(), "client");
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = with_client("require", &cert, &key).err().unwrap();
            assert!(
                matches!(&err, TlsSetupError::KeyFilePermissions { path, mode: m, limit: 0o600 }
                    if *path == key && *m == mode),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains(&format!("{mode:04o}")), "{err}");
        }
        for mode in [0o600, 0o400, 0o700] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            with_client("require", &cert, &key).unwrap();
        }
        if cfg!(target_os = "linux") {
            assert!(effective_uid().is_some(), "/proc/self/status gave no uid");
        }
    }
}
