//! What a failed call to the coordinator means: a TLS handshake that
//! cannot succeed (fail at once, saying what to fix), a coordinator that
//! cannot be reached (retry, saying why), or something else, for the
//! status code to decide.
//!
//! tonic hands every failure over as a [`Status`]; what happened on this
//! side is in its chain of sources. A TLS failure shows there as a
//! [`rustls::Error`], usually inside a [`std::io::Error`] (tokio-rustls
//! wraps it, and `io::Error::source` skips the wrapped error, so it is
//! reached through [`std::io::Error::get_ref`]).

use std::error::Error;
use std::io::ErrorKind;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{AlertDescription, CertificateError};
use tonic::Status;

use crate::error::NetError;

/// What a failed call means for the caller.
#[derive(Debug)]
pub(super) enum Failure {
    /// The TLS handshake failed: retrying cannot mend it.
    Handshake {
        /// The rustls error, when the chain carries it.
        tls: Option<rustls::Error>,
        /// The innermost error's text.
        detail: String,
    },
    /// No connection to the coordinator: retry, saying why.
    Unreachable(String),
    /// Neither: the status code decides ([`super::retryable`]).
    Other,
}

/// Classifies a failed call by walking the source chain of `status`.
pub(super) fn classify(status: &Status) -> Failure {
    let mut connecting = false;
    let mut kind = None;
    let mut unresolved = false;
    let mut detail = None;
    let mut node = Error::source(status);
    while let Some(e) = node {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Failure::Handshake {
                tls: Some(tls.clone()),
                detail: tls.to_string(),
            };
        }
        connecting |= e.is::<tonic::ConnectError>();
        let text = e.to_string();
        // hyper-util's resolver failure, and the standard library's (a
        // custom io::Error kind that cannot be matched on).
        unresolved |= text.starts_with("dns error") || text.contains("failed to lookup address");
        detail = Some(text);
        let io = e.downcast_ref::<std::io::Error>();
        if let Some(io) = io {
            kind = Some(io.kind());
        }
        // An io::Error's own `source` skips the error it wraps: go through
        // that error instead.
        node = match io.and_then(std::io::Error::get_ref) {
            Some(wrapped) => Some(wrapped as &(dyn Error + 'static)),
            None => e.source(),
        };
    }
    let detail = detail.unwrap_or_else(|| status.message().to_owned());
    let why = match kind {
        _ if unresolved => Some("name not resolved".to_owned()),
        Some(ErrorKind::ConnectionRefused) => Some("connection refused".to_owned()),
        Some(ErrorKind::TimedOut) => Some("timed out".to_owned()),
        Some(ErrorKind::HostUnreachable) => Some("host unreachable".to_owned()),
        Some(ErrorKind::NetworkUnreachable) => Some("network unreachable".to_owned()),
        // A connection attempt that failed with the data it read: the
        // handshake, in a wrapper that kept only the rustls error's text.
        Some(ErrorKind::InvalidData) if connecting => {
            return Failure::Handshake { tls: None, detail };
        }
        _ if connecting => Some(detail),
        _ => None,
    };
    why.map_or(Failure::Other, Failure::Unreachable)
}

/// The error for a TLS handshake with the coordinator at `url` that
/// failed with `tls` (or, when the chain lost it, `detail`), trusting the
/// PEM certificates `ca`.
pub(super) fn handshake_error(
    url: &str,
    ca: Option<&[u8]>,
    tls: Option<&rustls::Error>,
    detail: &str,
) -> NetError {
    let (reason, hint) = match tls {
        Some(rustls::Error::InvalidCertificate(e)) => {
            (format!("its certificate was not accepted: {}", certificate(e)), certificate_hint(e, ca))
        }
        Some(rustls::Error::NoCertificatesPresented) => (
            "it presented no certificate".to_owned(),
            "check that the URL names the federation's coordinator".to_owned(),
        ),
        Some(rustls::Error::PeerIncompatible(e)) => {
            (format!("it refused this participant's TLS ({e:?})"), refused_hint())
        }
        Some(rustls::Error::AlertReceived(
            alert @ (AlertDescription::HandshakeFailure
            | AlertDescription::ProtocolVersion
            | AlertDescription::InsufficientSecurity
            | AlertDescription::IllegalParameter
            | AlertDescription::NoApplicationProtocol),
        )) => (
            format!("it refused this participant's TLS (alert {alert:?})"),
            refused_hint(),
        ),
        Some(rustls::Error::AlertReceived(alert)) => (
            format!("it ended the handshake (alert {alert:?})"),
            "check that the URL names the federation's coordinator, and --ca".to_owned(),
        ),
        Some(
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. },
        ) => (
            format!("what answers there does not speak TLS ({})", detail),
            "check the URL's port; a coordinator serving plaintext (http://) is for loopback tests only".to_owned(),
        ),
        Some(rustls::Error::PeerMisbehaved(e)) => (
            format!("it broke the TLS protocol ({e:?})"),
            "check that the URL names the federation's coordinator".to_owned(),
        ),
        Some(other) => (
            other.to_string(),
            "check --ca and that the URL names the federation's coordinator".to_owned(),
        ),
        None => (
            detail.to_owned(),
            format!(
                "retrying does not mend this: check --ca ({}) and that the URL names the federation's coordinator",
                trust(ca)
            ),
        ),
    };
    NetError::Handshake {
        url: url.to_owned(),
        reason,
        hint,
    }
}

/// Why a certificate was not accepted, in words.
fn certificate(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => {
            "it is signed by a CA this participant does not trust (UnknownIssuer)".into()
        }
        CertificateError::BadSignature => {
            "it is not signed by the CA this participant trusts (BadSignature)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "it does not carry the name this participant connects to ({})",
                rustls::Error::InvalidCertificate(e.clone())
            )
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => format!(
            "it is outside its validity period ({})",
            rustls::Error::InvalidCertificate(e.clone())
        ),
        other => rustls::Error::InvalidCertificate(other.clone()).to_string(),
    }
}

/// What to do about a certificate that was not accepted.
fn certificate_hint(e: &CertificateError, ca: Option<&[u8]>) -> String {
    match e {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "connect by a name the certificate was made for (the coordinator's tls_names), or have the coordinator's certificate made for this one".into()
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "check this machine's clock, or ask the coordinator's operator for a current certificate".into()
        }
        _ => format!("check --ca: {}", trust(ca)),
    }
}

/// What this participant trusted, and what it should trust instead.
fn trust(ca: Option<&[u8]>) -> &'static str {
    match ca {
        None => {
            "none was given; pass the coordinator's tls-cert.pem (the path `ringsum serve` prints) or the certificate of the CA that signed it"
        }
        Some(pem) if !CertificateDer::pem_slice_iter(pem).any(|c| c.is_ok()) => {
            "the file given holds no PEM certificate; pass the coordinator's tls-cert.pem (the path `ringsum serve` prints) or the certificate of the CA that signed it"
        }
        Some(_) => {
            "the certificate given did not sign this coordinator's certificate (is it another coordinator's, another federation's?); pass the tls-cert.pem of the coordinator at this URL (the path its `ringsum serve` prints) or the certificate of the CA that signed it"
        }
    }
}

/// What to do when the coordinator refused this participant's TLS.
fn refused_hint() -> String {
    format!(
        "no TLS version or key exchange in common: this participant offers TLS 1.3 with {}; check that the URL names the federation's coordinator and that both run compatible ringsum builds",
        crate::tls::key_exchange_groups().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A status as tonic makes it from a failed connection attempt: the
    /// cause wrapped in tonic's `ConnectError`.
    fn connect_failure(cause: std::io::Error) -> Status {
        let mut status = Status::unavailable("tcp connect error");
        status.set_source(Arc::new(tonic::ConnectError(Box::new(cause))));
        status
    }

    fn tls(e: rustls::Error) -> Status {
        connect_failure(std::io::Error::new(ErrorKind::InvalidData, e))
    }

    #[test]
    fn a_certificate_that_is_not_accepted_fails_at_once_and_says_check_ca() {
        let status = tls(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let Failure::Handshake {
            tls: Some(e),
            detail,
        } = classify(&status)
        else {
            unreachable!("{:?}", classify(&status))
        };
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        for (ca, says) in [
            (None, "none was given"),
            (Some(&b"hello"[..]), "holds no PEM certificate"),
            (
                Some(&b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"[..]),
                "did not sign this coordinator's certificate",
            ),
        ] {
            let message = handshake_error("https://c:1", ca, Some(&e), &detail).to_string();
            assert!(message.contains("https://c:1"), "{message}");
            assert!(
                message.contains("certificate was not accepted"),
                "{message}"
            );
            assert!(message.contains("check --ca"), "{message}");
            assert!(message.contains(says), "{message}");
        }
        // Deeper in the chain, and under a wrapper that names the URL.
        let mut nested = Status::unknown("transport error");
        let wrapped = std::io::Error::new(
            ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature),
        );
        nested.set_source(Arc::new(tonic::ConnectError(Box::new(
            std::io::Error::other(Box::new(wrapped) as Box<dyn Error + Send + Sync>),
        ))));
        assert!(matches!(
            classify(&nested),
            Failure::Handshake {
                tls: Some(rustls::Error::InvalidCertificate(
                    CertificateError::BadSignature
                )),
                ..
            }
        ));
        assert!(!super::super::retryable(&status));
        assert!(!super::super::retryable(&nested));
    }

    #[test]
    fn a_coordinator_that_refuses_our_tls_fails_at_once() {
        for e in [
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoKxGroupsInCommon),
        ] {
            let Failure::Handshake {
                tls: Some(e),
                detail,
            } = classify(&tls(e))
            else {
                unreachable!("a TLS failure")
            };
            let message = handshake_error("https://c:1", Some(b""), Some(&e), &detail).to_string();
            assert!(
                message.contains("refused this participant's TLS"),
                "{message}"
            );
            assert!(message.contains("X25519MLKEM768"), "{message}");
        }
        // Plaintext where TLS was expected.
        let Failure::Handshake {
            tls: Some(e),
            detail,
        } = classify(&tls(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )))
        else {
            unreachable!("a TLS failure")
        };
        let message = handshake_error("https://c:1", None, Some(&e), &detail).to_string();
        assert!(message.contains("does not speak TLS"), "{message}");
        // A wrapper that kept only the text: still a handshake failure.
        let lost = connect_failure(std::io::Error::new(
            ErrorKind::InvalidData,
            "https://c:1: TLS handshake: invalid peer certificate: UnknownIssuer",
        ));
        let Failure::Handshake { tls: None, detail } = classify(&lost) else {
            unreachable!("{:?}", classify(&lost))
        };
        let message = handshake_error("https://c:1", None, None, &detail).to_string();
        assert!(
            message.contains("UnknownIssuer") && message.contains("check --ca"),
            "{message}"
        );
    }

    #[test]
    fn an_unreachable_coordinator_is_retried_and_says_why() {
        for (cause, why) in [
            (
                std::io::Error::from(ErrorKind::ConnectionRefused),
                "connection refused",
            ),
            (std::io::Error::from(ErrorKind::TimedOut), "timed out"),
            (
                std::io::Error::other(
                    "failed to lookup address information: Name or service not known",
                ),
                "name not resolved",
            ),
        ] {
            let status = connect_failure(cause);
            assert!(super::super::retryable(&status));
            match classify(&status) {
                Failure::Unreachable(reason) => assert_eq!(reason, why),
                other => unreachable!("{other:?}"),
            }
        }
        // The coordinator's own answers carry no source.
        for status in [
            Status::unavailable("restarting"),
            Status::invalid_argument("bad signature"),
        ] {
            assert!(matches!(classify(&status), Failure::Other));
        }
        assert!(super::super::retryable(&Status::unavailable("restarting")));
        assert!(!super::super::retryable(&Status::invalid_argument("bad")));
    }
}
