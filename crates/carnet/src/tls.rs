//! Built-in TLS (rustls with the aws-lc-rs provider): certificates from files, or a
//! self-signed one generated on first start and kept in the data directory.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, TlsMode};
use crate::exit::CliError;

/// The server's certificate chain and key for `config`, or `None` when TLS is off.
pub fn server_identity(
    config: &Config,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, CliError> {
    let (cert_path, key_path) = match config.tls {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => (
            PathBuf::from(&config.tls_cert_file),
            PathBuf::from(&config.tls_key_file),
        ),
        TlsMode::SelfSigned => ensure_self_signed(config)?,
    };
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(Iterator::collect)
        .map_err(|error| {
            CliError::refusal(format!(
                "certificat TLS illisible {} ({error})",
                cert_path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(CliError::refusal(format!(
            "le fichier {} ne contient aucun certificat",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|error| {
        CliError::refusal(format!(
            "clé TLS illisible {} ({error})",
            key_path.display()
        ))
    })?;
    Ok(Some((certificates, key)))
}

/// The self-signed certificate and key in `<data_dir>/tls/`, generated if missing.
fn ensure_self_signed(config: &Config) -> Result<(PathBuf, PathBuf), CliError> {
    let dir = config.data_dir.join("tls");
    let cert_path = dir.join("self-signed.crt");
    let key_path = dir.join("self-signed.key");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|error| {
            CliError::refusal(format!("impossible de créer {} ({error})", dir.display()))
        })?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(address) = config.listen_address()
        && !address.ip().is_unspecified()
    {
        names.push(address.ip().to_string());
    }
    names.dedup();
    let generated = rcgen::generate_simple_self_signed(names).map_err(|error| {
        CliError::refusal(format!(
            "génération du certificat auto-signé impossible ({error})"
        ))
    })?;
    write_new_file(
        &key_path,
        generated.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_new_file(&cert_path, generated.cert.pem().as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Writes `content` to `path` (created or replaced) with `mode`, synced to disk.
pub(crate) fn write_new_file(path: &Path, content: &[u8], mode: u32) -> Result<(), CliError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|error| {
            CliError::refusal(format!("impossible de créer {} ({error})", path.display()))
        })?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|error| {
            CliError::refusal(format!("impossible d'écrire {} ({error})", path.display()))
        })
}

/// For `config check`: the TLS files named by the configuration exist and are readable.
pub fn check_files(config: &Config) -> Result<(), CliError> {
    if config.tls == TlsMode::Files {
        for path in [&config.tls_cert_file, &config.tls_key_file] {
            fs::metadata(path).map_err(|error| {
                CliError::refusal(format!("fichier TLS {path} inaccessible ({error})"))
            })?;
        }
    }
    Ok(())
}
