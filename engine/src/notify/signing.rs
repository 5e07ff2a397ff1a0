//! Signatures of outbound webhook bodies: `VitaSync-Signature: t=<unix seconds>,v1=<hex>` where
//! the hex is HMAC-SHA256 over `"<t>.<raw body>"` with the webhook's secret. Binding the time
//! into the MAC lets a receiver reject replays of old deliveries.

use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

/// A new signing secret, shown to the integrator once.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// The header value for `body` signed at `t`.
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

/// Checks a header against `body`: the MAC must match and `t` be within `tolerance_secs` of
/// `now` (what a receiver does; kept here so the format has one definition and a test).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    let expected = mac(secret, t, body);
    sigs.iter().any(|s| {
        hex::decode(s).is_ok_and(|given| {
            given.len() == expected.len()
                && given
                    .iter()
                    .zip(expected.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_with_replay_window() {
        let secret = generate_secret();
        let body = br#"{"id":"x"}"#;
        let h = signature_header(&secret, 1_700_000_000, body);
        assert!(verify(&secret, &h, body, 1_700_000_100, 300));
        assert!(!verify(&secret, &h, body, 1_700_000_301, 300), "too old");
        assert!(
            !verify(&secret, &h, b"{}", 1_700_000_000, 300),
            "other body"
        );
        assert!(!verify("whsec_other", &h, body, 1_700_000_000, 300));
    }
}
