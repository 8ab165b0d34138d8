//! For tests: a certificate authority made on the spot, and an HTTPS server on loopback
//! whose certificate it signed, over the same OpenSSL the client uses.

use std::net::SocketAddr;
use std::path::PathBuf;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Name, X509};
use tokio::net::{TcpListener, TcpStream};
use tokio_native_tls::TlsStream;

/// A CA's certificate in a PEM file, and a server certificate and key it signed for
/// `127.0.0.1` and `localhost`.
pub(crate) struct TestPki {
    /// Holds the CA file.
    _dir: tempfile::TempDir,
    /// The CA's certificate, PEM: what a client is told to trust.
    pub ca_file: PathBuf,
    /// The server's certificate, PEM.
    pub cert_pem: Vec<u8>,
    /// The server's key, PKCS#8 PEM.
    pub key_pem: Vec<u8>,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name(common_name: &str) -> X509Name {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .unwrap();
    name.build()
}

fn builder(serial: u32, subject: &X509Name, issuer: &X509Name) -> openssl::x509::X509Builder {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_issuer_name(issuer).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b
}

impl TestPki {
    /// A fresh CA and server certificate.
    pub(crate) fn new() -> TestPki {
        let ca_key = key();
        let ca_name = name("berth test CA");
        let mut ca = builder(1, &ca_name, &ca_name);
        ca.set_pubkey(&ca_key).unwrap();
        ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        ca.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let ca = ca.build();

        let server_key = key();
        let mut server = builder(2, &name("localhost"), &ca_name);
        server.set_pubkey(&server_key).unwrap();
        server
            .append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        server
            .append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&server.x509v3_context(Some(&ca), None))
            .unwrap();
        server.append_extension(san).unwrap();
        server.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let server = server.build();

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.to_pem().unwrap()).unwrap();
        TestPki {
            _dir: dir,
            ca_file,
            cert_pem: server.to_pem().unwrap(),
            key_pem: server_key.private_key_to_pem_pkcs8().unwrap(),
        }
    }

    /// Serves `app` over HTTPS on loopback with the server certificate; returns its
    /// address.
    pub(crate) async fn serve(&self, app: axum::Router) -> SocketAddr {
        let identity = native_tls::Identity::from_pkcs8(&self.cert_pem, &self.key_pem).unwrap();
        let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TlsListener {
            tcp,
            acceptor: acceptor.into(),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
}

/// Accepts TCP connections and completes their TLS handshake; a failed handshake (a
/// client that does not trust the certificate) is dropped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_native_tls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
