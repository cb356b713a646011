//! Optional mutual TLS (rustls) on every connection of a service: its server
//! presents a certificate and asks callers for one signed by the trusted CA;
//! its clients (survey calling intake) present theirs and check the server's
//! against the same CA. Off unless configured: bearer tokens authenticate
//! callers either way, TLS adds encryption and keeps callers without a
//! certificate from the services' ports altogether.
//!
//! Configured by three files, all three or none:
//! `DISPATCH311_TLS_CERT` (this service's certificate chain, PEM; used as
//! server and client certificate), `DISPATCH311_TLS_KEY` (its private key,
//! PEM) and `DISPATCH311_TLS_CA` (the CA certificate(s) that sign the
//! services' certificates, PEM). `DISPATCH311_TLS_CLIENT_AUTH=optional` lets
//! callers without a certificate in (TLS still on, e.g. integrators reaching
//! intake directly); the default, `required`, refuses them during the
//! handshake.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

pub const CERT_VAR: &str = "DISPATCH311_TLS_CERT";
pub const KEY_VAR: &str = "DISPATCH311_TLS_KEY";
pub const CA_VAR: &str = "DISPATCH311_TLS_CA";
pub const CLIENT_AUTH_VAR: &str = "DISPATCH311_TLS_CLIENT_AUTH";

/// This service's certificate and key and the CA it trusts.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    identity: Identity,
    ca: Certificate,
    client_auth_optional: bool,
}

/// Whether a server lets callers without a certificate in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// Callers without a certificate are refused during the handshake.
    Required,
    /// Callers without a certificate may connect (TLS still on), e.g.
    /// integrators reaching intake directly.
    Optional,
}

/// Mutual TLS settings, from flags or the environment: all three files or none.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// This service's certificate chain, PEM (server and client certificate).
    #[arg(long = "tls-cert", env = CERT_VAR, value_name = CERT_VAR)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of that certificate, PEM.
    #[arg(long = "tls-key", env = KEY_VAR, value_name = KEY_VAR)]
    pub tls_key: Option<PathBuf>,
    /// The CA certificate(s) that sign the services' certificates, PEM.
    #[arg(long = "tls-ca", env = CA_VAR, value_name = CA_VAR)]
    pub tls_ca: Option<PathBuf>,
    /// Whether callers must present a certificate.
    #[arg(
        long = "tls-client-auth",
        env = CLIENT_AUTH_VAR,
        value_name = CLIENT_AUTH_VAR,
        value_enum,
        default_value = "required"
    )]
    pub tls_client_auth: ClientAuth,
}

impl TlsArgs {
    /// `None` when none of the files is set; an error naming the missing
    /// ones when only some are.
    pub fn config(&self) -> anyhow::Result<Option<TlsConfig>> {
        let set = |path: &Option<PathBuf>| {
            path.clone()
                .filter(|p| !p.as_os_str().to_string_lossy().trim().is_empty())
        };
        match (set(&self.tls_cert), set(&self.tls_key), set(&self.tls_ca)) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => {
                let config = TlsConfig::from_files(&cert, &key, &ca)?;
                Ok(Some(config.with_client_auth_optional(
                    self.tls_client_auth == ClientAuth::Optional,
                )))
            }
            (cert, key, ca) => {
                let missing: Vec<&str> = [
                    (CERT_VAR, cert.is_none()),
                    (KEY_VAR, key.is_none()),
                    (CA_VAR, ca.is_none()),
                ]
                .into_iter()
                .filter(|(_, missing)| *missing)
                .map(|(name, _)| name)
                .collect();
                anyhow::bail!(
                    "mutual TLS needs {CERT_VAR}, {KEY_VAR} and {CA_VAR} together; missing: {}",
                    missing.join(", ")
                )
            }
        }
    }
}

impl TlsConfig {
    /// Reads the three PEM files and checks that each holds what it should.
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<Self> {
        let read = |path: &Path, var: &str, marker: &str| -> anyhow::Result<String> {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {var} ({})", path.display()))?;
            anyhow::ensure!(
                pem.contains(marker),
                "{var} ({}) holds no PEM {marker}",
                path.display()
            );
            Ok(pem)
        };
        Ok(Self::from_pem(
            &read(cert, CERT_VAR, "CERTIFICATE")?,
            &read(key, KEY_VAR, "PRIVATE KEY")?,
            &read(ca, CA_VAR, "CERTIFICATE")?,
        ))
    }

    pub fn from_pem(cert: &str, key: &str, ca: &str) -> Self {
        Self {
            identity: Identity::from_pem(cert, key),
            ca: Certificate::from_pem(ca),
            client_auth_optional: false,
        }
    }

    /// Whether callers without a certificate may connect (default: no).
    pub fn with_client_auth_optional(mut self, optional: bool) -> Self {
        self.client_auth_optional = optional;
        self
    }

    /// What a server presents and asks of its callers.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .client_auth_optional(self.client_auth_optional)
    }

    /// What a client presents, and the only CA it trusts for the server.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
    }
}

/// Certificates for development and tests: a CA made on the spot and one
/// certificate it signs for `localhost` and 127.0.0.1, good for serving and
/// for calling. Never for production: every holder of the files is trusted.
#[cfg(feature = "dev-certificates")]
pub mod dev {
    use std::path::{Path, PathBuf};

    use anyhow::Context as _;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    /// A CA and a certificate it signed, PEM.
    #[derive(Debug, Clone)]
    pub struct DevCertificates {
        pub ca_pem: String,
        pub cert_pem: String,
        pub key_pem: String,
    }

    /// Where [`DevCertificates::write`] puts the files.
    #[derive(Debug, Clone)]
    pub struct DevCertificateFiles {
        pub ca: PathBuf,
        pub cert: PathBuf,
        pub key: PathBuf,
    }

    impl DevCertificateFiles {
        /// `ca.pem`, `service.pem` and `service-key.pem` in `dir`.
        pub fn in_dir(dir: &Path) -> Self {
            Self {
                ca: dir.join("ca.pem"),
                cert: dir.join("service.pem"),
                key: dir.join("service-key.pem"),
            }
        }

        pub fn exist(&self) -> bool {
            [&self.ca, &self.cert, &self.key].iter().all(|f| f.exists())
        }

        /// The `DISPATCH311_TLS_*` settings that use these files.
        pub fn env(&self) -> [(&'static str, &Path); 3] {
            [
                (super::CERT_VAR, &self.cert),
                (super::KEY_VAR, &self.key),
                (super::CA_VAR, &self.ca),
            ]
        }
    }

    impl DevCertificates {
        /// A new CA named `ca_name` and a certificate for `localhost` and 127.0.0.1.
        pub fn generate(ca_name: &str) -> anyhow::Result<Self> {
            let mut ca = CertificateParams::new(Vec::<String>::new())?;
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.distinguished_name.push(DnType::CommonName, ca_name);
            ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca_key = KeyPair::generate()?;
            let ca_cert = ca.self_signed(&ca_key)?;
            let issuer = Issuer::new(ca, ca_key);

            let mut leaf =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
            leaf.distinguished_name
                .push(DnType::CommonName, "dispatch311 service");
            leaf.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            leaf.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            leaf.use_authority_key_identifier_extension = true;
            let leaf_key = KeyPair::generate()?;
            let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
            Ok(Self {
                ca_pem: ca_cert.pem(),
                cert_pem: leaf_cert.pem(),
                key_pem: leaf_key.serialize_pem(),
            })
        }

        /// Writes the files of [`DevCertificateFiles::in_dir`] (the key owner-only).
        pub fn write(&self, dir: &Path) -> anyhow::Result<DevCertificateFiles> {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let files = DevCertificateFiles::in_dir(dir);
            std::fs::write(&files.ca, &self.ca_pem)?;
            std::fs::write(&files.cert, &self.cert_pem)?;
            write_private(&files.key, &self.key_pem)?;
            Ok(files)
        }

        pub fn config(&self) -> super::TlsConfig {
            super::TlsConfig::from_pem(&self.cert_pem, &self.key_pem, &self.ca_pem)
        }
    }

    fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.write_all(contents.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Settings {
        #[command(flatten)]
        tls: TlsArgs,
    }

    fn from(flags: &[&str]) -> anyhow::Result<Option<TlsConfig>> {
        let settings =
            Settings::try_parse_from(std::iter::once("service").chain(flags.iter().copied()))?;
        settings.tls.config()
    }

    #[test]
    fn off_without_files_and_refused_with_only_some_of_them() {
        assert!(from(&[]).unwrap().is_none());
        assert!(from(&["--tls-cert", " "]).unwrap().is_none());
        let error = from(&["--tls-cert", "/etc/dispatch311/service.pem"])
            .unwrap_err()
            .to_string();
        let missing = error.split("missing: ").nth(1).unwrap_or_default();
        assert_eq!(missing, format!("{KEY_VAR}, {CA_VAR}"), "{error}");
        let error = from(&["--tls-client-auth", "sometimes"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("required"), "{error}");
    }

    #[test]
    fn a_file_without_the_expected_pem_is_named() {
        let dir = std::env::temp_dir().join(format!("tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let path = empty.to_str().unwrap();
        let error = from(&["--tls-cert", path, "--tls-key", path, "--tls-ca", path])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(CERT_VAR) && error.contains("CERTIFICATE"),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
