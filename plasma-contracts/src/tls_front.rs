//! A TLS front for tests (behind the `devnet` feature): a private CA (rcgen) and a TLS listener
//! (tokio-rustls) that forwards every connection's bytes to a plain-TCP upstream such as anvil,
//! so the `https://` code paths run against a real node. The CA's certificate is written to a PEM
//! file to trust through `PLASMA_CA_FILE` or [`crate::l1::ClientOptions::with_ca_file`].

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};
use tokio::net::{TcpListener, TcpStream};

/// Why a test CA or front could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsFrontError {
    /// Generating or signing a certificate failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// The TLS server configuration was refused.
    #[error("TLS config: {0}")]
    Tls(#[from] rustls::Error),
    /// Writing the CA file or binding the listener failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// A private certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    /// A new CA with a fresh key.
    pub fn new() -> Result<Self, TlsFrontError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "plasma test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self { pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns the path.
    pub fn write_pem(&self, dir: &Path) -> Result<PathBuf, TlsFrontError> {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.pem)?;
        Ok(path)
    }

    /// A server certificate for `names` (host names or IP addresses) signed by this CA, with its
    /// key.
    pub fn leaf(
        &self,
        names: &[&str],
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsFrontError> {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key))
    }
}

/// A running TLS front; dropping it stops accepting.
#[derive(Debug)]
pub struct TlsFront {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsFront {
    /// Listens on 127.0.0.1 with a certificate from `ca` for `names` and forwards each
    /// connection, once its handshake is done, to `upstream`.
    pub async fn start(
        ca: &TestCa,
        names: &[&str],
        upstream: SocketAddr,
    ) -> Result<Self, TlsFrontError> {
        let (cert, key) = ca.leaf(names)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    let Ok(mut node) = TcpStream::connect(upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut node).await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `https://127.0.0.1:{port}` (the certificate must name `127.0.0.1`).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}
