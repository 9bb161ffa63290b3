//! The one base64 engine every codec of this crate shares.
//!
//! Decoding is deliberately lenient in the same ways Dovecot's decoder is: missing `=` padding
//! and non-zero trailing bits are accepted, because real clients produce both and rejecting them
//! would only turn a login into an unexplained failure. The alphabet itself is strict (standard
//! alphabet, no whitespace), which is what Postfix already enforces before forwarding.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding (what Dovecot sends).
pub(crate) fn encode(data: &[u8]) -> String {
    ENGINE.encode(data)
}

/// Lenient standard-alphabet decoding; `None` when the text is not base64.
///
/// Into a buffer from `malloc`, not the zeroed one `Engine::decode` asks for: glibc's `calloc`
/// skips its per-thread cache, and beside 10,000 idle connections (a fragmented heap) it was
/// 8% of a `{PLAIN}` login's CPU (README, "Benchmarks of this work").
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len().div_ceil(4) * 3);
    ENGINE.decode_vec(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_leniency() {
        assert_eq!(encode(b"Username:"), "VXNlcm5hbWU6");
        assert_eq!(decode("VXNlcm5hbWU6").as_deref(), Some(&b"Username:"[..]));
        assert_eq!(decode("AQ==").as_deref(), Some(&b"\x01"[..]));
        assert_eq!(decode("AQ").as_deref(), Some(&b"\x01"[..]));
        assert_eq!(decode("AR==").as_deref(), Some(&b"\x01"[..]));
        assert_eq!(decode("").as_deref(), Some(&b""[..]));
        assert_eq!(decode("!!!notbase64"), None);
        assert_eq!(decode("A"), None);
        assert_eq!(decode("QUJD RA=="), None);
    }
}
