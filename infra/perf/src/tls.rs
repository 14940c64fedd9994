//! TLS in front of the emulators, for the cold-start instrument: every AWS endpoint a Lambda
//! function calls is HTTPS, and a new environment pays a TLS handshake on its first call to
//! each (Secrets Manager at init, DynamoDB on its first request), which plain HTTP to the
//! emulators would leave out. A throwaway certificate authority signs a certificate for
//! `127.0.0.1` and `localhost`; the functions trust it through `SSL_CERT_FILE` (the AWS SDK's
//! rustls client reads its roots from there); each proxy ends TLS and passes the bytes on to
//! its emulator as they are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A certificate authority of our own and the server certificate it signed.
pub struct Authority {
    /// The authority's certificate (PEM), for `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    acceptor: TlsAcceptor,
}

impl Authority {
    /// Makes the authority and the server certificate, and writes the authority's certificate
    /// to `dir/ca.pem`.
    pub fn new(dir: &Path) -> Result<Self, String> {
        let err = |e: rcgen::Error| e.to_string();
        let ca_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cold-start instrument CA");
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(err)?;
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).map_err(|e| e.to_string())?;
        // The provider named, not left to the crate features (both rustls backends are built
        // into this binary through its dependencies).
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| e.to_string())?;
        Ok(Self {
            ca_file,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Listens on a free loopback port, ends TLS and forwards each connection to `upstream`.
    /// The proxy runs until the process ends.
    pub async fn proxy(&self, upstream: SocketAddr) -> Result<SocketAddr, String> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(addr)
    }
}
