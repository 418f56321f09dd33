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

use ::postgres::{
    Config, Socket,
    config::SslMode as WireMode,
    tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream},
};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
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
}

/// A URL's connection settings with its TLS applied: `config` for `postgres`, `tls` to pass to
/// `Config::connect`.
pub(crate) struct PgConnect {
    pub(crate) config: Config,
    pub(crate) tls: MakeRustls,
    pub(crate) mode: SslMode,
}

/// Parses `url`, taking out `sslmode` and `sslrootcert` (which `postgres` does not know in full)
/// and building the TLS they ask for.
pub(crate) fn parse(url: &str) -> Result<PgConnect, TlsSetupError> {
    let (rest, mode, rootcert) = take_tls_params(url)?;
    let mut config = rest.parse::<Config>().map_err(|e| TlsSetupError::Url(e.to_string()))?;
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
    let tls = MakeRustls::new(mode, rootcert.as_deref())?;
    Ok(PgConnect { config, tls, mode })
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

/// Splits `sslmode` and `sslrootcert` off a `postgres://` URL's query (percent-decoded); other
/// forms are returned whole.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<String>), TlsSetupError> {
    // The query starts at the first `?` AFTER the credentials (a password may hold a `?`): the
    // client's own cut, shared with the redaction (`store::PgUrlParts`).
    let Some(parts) = crate::store::PgUrlParts::split(url) else {
        return Ok((url.to_owned(), None, None));
    };
    let Some(query) = parts.query else { return Ok((url.to_owned(), None, None)) };
    let base = parts.without_query();
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => mode = Some(percent_decode(v)?),
            "sslrootcert" => root = Some(percent_decode(v)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, mode, root))
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
    fn new(mode: SslMode, rootcert: Option<&str>) -> Result<Self, TlsSetupError> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        let config = if mode.verifies() {
            let roots = Arc::new(roots(rootcert)?);
            if mode == SslMode::VerifyFull {
                builder.with_root_certificates(roots).with_no_client_auth()
            } else {
                let webpki =
                    rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                        .build()
                        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            }
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth()
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
        let (rest, mode, root) = take_tls_params(
            "postgres://u:p@h:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));
        let (rest, mode, _) = take_tls_params("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!((rest.as_str(), mode.as_deref()), ("postgres://h/db", Some("disable")));
        assert_eq!(
            take_tls_params("host=h sslmode=require").unwrap(),
            ("host=h sslmode=require".into(), None, None)
        );
    }

    #[test]
    fn the_query_starts_after_the_credentials_as_the_client_cuts_it() {
        // A password holding `?`, `/`, `#` and `&`: the query is the one after the `@`.
        let url =
            "postgres://u:a?b/c#d&sslmode=disable@h:5432/db?sslmode=require&application_name=x";
        let (rest, mode, root) = take_tls_params(url).unwrap();
        assert_eq!(rest, "postgres://u:a?b/c#d&sslmode=disable@h:5432/db?application_name=x");
        assert_eq!((mode.as_deref(), root), (Some("require"), None));
        // What is left is what the client parses: the whole password, the host after the `@`.
        let parsed = parse(url).unwrap();
        assert_eq!(parsed.mode, SslMode::Require);
        assert_eq!(parsed.config.get_password(), Some(&b"a?b/c#d&sslmode=disable"[..]));
        assert_eq!(parsed.config.get_dbname(), Some("db"));
        // No query after the credentials: nothing is taken out, the URL is passed whole.
        let (rest, mode, _) = take_tls_params("postgres://u:p?sslmode=disable@h/db").unwrap();
        assert_eq!((rest.as_str(), mode), ("postgres://u:p?sslmode=disable@h/db", None));
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
            let (rest, mode, _) = take_tls_params(&url).unwrap();
            assert_eq!(mode.as_deref(), Some("disable"), "{url:?}");
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
        // A CA file that is not there is a clear error, not a silent fallback.
        let err = parse("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
