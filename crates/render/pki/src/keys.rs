//! Private keys: generation for each [`KeyAlgorithm`], loading prior keys,
//! and the checks of a bring-your-own CA.
//!
//! ring (our one crypto backend) cannot generate RSA keys, so RSA keys come
//! from the RustCrypto `rsa` crate and are handed to rcgen/ring as PKCS#8;
//! every signature is made by ring. The `rsa` crate is used for key generation
//! and PKCS#1→PKCS#8 conversion only, never to sign or decrypt.

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use x509_parser::prelude::FromDer;

use crate::params::{attr, CaPair, InputError, KeyAlgorithm};

/// Failures of key handling.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// ring could not generate an ECDSA key.
    #[error("generating an ECDSA P-256 key")]
    GenerateEcdsa(#[source] rcgen::Error),
    /// The `rsa` crate could not generate an RSA key.
    #[error("generating an RSA-{bits} key")]
    GenerateRsa {
        /// Modulus size.
        bits: usize,
        /// Cause.
        #[source]
        source: rsa::Error,
    },
    /// An RSA key could not be encoded as PKCS#8.
    #[error("encoding an RSA key as PKCS#8")]
    EncodeRsa(#[source] rsa::pkcs8::Error),
    /// A key-generation thread panicked.
    #[error("a key generation thread failed")]
    Thread,
    /// A key PEM could not be loaded by ring.
    #[error("loading a private key (PKCS#8 PEM expected)")]
    Load(#[source] rcgen::Error),
}

/// Generates a fresh random key (OS randomness) of the given algorithm.
pub(crate) fn generate(alg: KeyAlgorithm) -> Result<KeyPair, KeyError> {
    match alg.rsa_bits() {
        None => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(KeyError::GenerateEcdsa),
        Some(bits) => {
            let mut rng = rsa::rand_core::OsRng;
            let key =
                rsa::RsaPrivateKey::new(&mut rng, bits).map_err(|source| KeyError::GenerateRsa { bits, source })?;
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(KeyError::EncodeRsa)?;
            KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).map_err(KeyError::Load)
        }
    }
}

/// Generates `n` fresh keys. RSA keys are slow to make (hundreds of ms each
/// for 2048 bits), so they are made on one thread per available core.
pub(crate) fn generate_many(alg: KeyAlgorithm, n: usize) -> Result<Vec<KeyPair>, KeyError> {
    let Some(bits) = alg.rsa_bits() else {
        return (0..n).map(|_| generate(alg)).collect();
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, n.max(1));
    let per_thread = n.div_ceil(threads);
    let pems: Vec<Result<String, KeyError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = per_thread.min(n.saturating_sub(t * per_thread));
                scope.spawn(move || (0..count).map(|_| rsa_pkcs8_pem(bits)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec![Err(KeyError::Thread)]))
            .collect()
    });
    pems.into_iter()
        .map(|pem| KeyPair::from_pkcs8_pem_and_sign_algo(&pem?, &PKCS_RSA_SHA256).map_err(KeyError::Load))
        .collect()
}

fn rsa_pkcs8_pem(bits: usize) -> Result<String, KeyError> {
    let mut rng = rsa::rand_core::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, bits).map_err(|source| KeyError::GenerateRsa { bits, source })?;
    Ok(key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(KeyError::EncodeRsa)?
        .to_string())
}

/// Loads a PKCS#8 PEM key as written by [`generate`] (or normalised by [`check_byo_ca`]).
pub(crate) fn load(pem: &str) -> Result<KeyPair, KeyError> {
    KeyPair::from_pem(pem).map_err(KeyError::Load)
}

/// The key algorithm of a subject public key, if it is one we generate.
pub(crate) fn algorithm_of_spki(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<KeyAlgorithm> {
    use x509_parser::public_key::PublicKey;
    match spki.parsed().ok()? {
        PublicKey::EC(ec) if ec.key_size() == 256 => Some(KeyAlgorithm::EcdsaP256),
        PublicKey::RSA(rsa) => match rsa.key_size() {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        },
        _ => None,
    }
}

/// Checks a bring-your-own CA: a CA certificate (basicConstraints CA:TRUE, may
/// sign certificates) and a key that ring can sign with and that matches it.
/// Returns the pair normalised: the certificate re-encoded as one PEM block,
/// the key as PKCS#8 PEM (a PKCS#1 `RSA PRIVATE KEY` is converted).
pub(crate) fn check_byo_ca(cert_pem: &str, key_pem: &str) -> Result<CaPair, Vec<InputError>> {
    let mut errs = Vec::new();
    let err = |a: &'static str, m: String| InputError {
        attribute: a,
        index: None,
        message: m,
    };
    let cert = match pem::parse(cert_pem) {
        Ok(p) if p.tag() == "CERTIFICATE" => Some(p),
        Ok(p) => {
            errs.push(err(
                attr::CA_CERT_PEM,
                format!(
                    "holds a {:?} PEM block; write the CA certificate (-----BEGIN CERTIFICATE-----)",
                    p.tag()
                ),
            ));
            None
        }
        Err(e) => {
            errs.push(err(
                attr::CA_CERT_PEM,
                format!("is not PEM ({e}); write the CA certificate as -----BEGIN CERTIFICATE----- ..."),
            ));
            None
        }
    };
    let key = match normalise_key(key_pem) {
        Ok(k) => Some(k),
        Err(m) => {
            errs.push(err(attr::CA_PRIVATE_KEY_PEM, m));
            None
        }
    };
    let mut cert_out = None;
    if let Some(cert) = &cert {
        match x509_parser::certificate::X509Certificate::from_der(cert.contents()) {
            Err(e) => errs.push(err(
                attr::CA_CERT_PEM,
                format!("is not a readable X.509 certificate ({e}); write the PEM of the CA certificate"),
            )),
            Ok((_, x509)) => {
                let is_ca = matches!(x509.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
                let can_sign = match x509.key_usage() {
                    Ok(Some(ku)) => ku.value.key_cert_sign(),
                    Ok(None) => true,
                    Err(_) => false,
                };
                if !is_ca {
                    errs.push(err(
                        attr::CA_CERT_PEM,
                        "is not a CA certificate (basicConstraints CA:TRUE is missing); write the certificate of a certificate authority, not of a server or client".into(),
                    ));
                } else if !can_sign {
                    errs.push(err(
                        attr::CA_CERT_PEM,
                        "may not sign certificates (keyUsage lacks keyCertSign); write a CA certificate whose key usage includes keyCertSign".into(),
                    ));
                }
                if let Some((_, key)) = &key {
                    if key.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
                        errs.push(err(
                            attr::CA_PRIVATE_KEY_PEM,
                            "does not match ca_cert_pem (different public key); write the private key of that CA certificate".into(),
                        ));
                    }
                }
                cert_out = Some(pem::encode_config(
                    &pem::Pem::new("CERTIFICATE", cert.contents().to_vec()),
                    pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
                ));
            }
        }
    }
    match (cert_out, key) {
        (Some(cert_pem), Some((key_pem, _))) if errs.is_empty() => Ok(CaPair { cert_pem, key_pem }),
        _ => Err(errs),
    }
}

/// PKCS#8 or PKCS#1 RSA PEM → PKCS#8 PEM that ring loads, and the loaded key.
fn normalise_key(key_pem: &str) -> Result<(String, KeyPair), String> {
    let block = pem::parse(key_pem)
        .map_err(|e| format!("is not PEM ({e}); write the CA key as -----BEGIN PRIVATE KEY----- ..."))?;
    let pkcs8 = match block.tag() {
        "PRIVATE KEY" => pem::encode_config(
            &pem::Pem::new("PRIVATE KEY", block.contents().to_vec()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ),
        "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(block.contents())
            .map_err(|e| format!("is not a readable PKCS#1 RSA key ({e}); write the CA's private key"))?
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("could not be converted to PKCS#8 ({e})"))?
            .to_string(),
        "EC PRIVATE KEY" => {
            return Err(
                "is a SEC1 EC key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in ca.key` and write that"
                    .into(),
            )
        }
        "ENCRYPTED PRIVATE KEY" => {
            return Err("is encrypted; write the unencrypted key (`openssl pkcs8 -topk8 -nocrypt -in ca.key`)".into())
        }
        other => {
            return Err(format!(
                "holds a {other:?} PEM block; write the CA's private key (-----BEGIN PRIVATE KEY-----)"
            ))
        }
    };
    let key = KeyPair::from_pem(&pkcs8).map_err(|e| {
        format!("cannot be used for signing ({e}); write an ECDSA P-256/P-384, Ed25519 or RSA (2048-8192 bit) key in PKCS#8")
    })?;
    Ok((pkcs8, key))
}
