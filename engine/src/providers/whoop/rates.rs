//! WHOOP's rate headers: `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds) describe the
//! window closest to its limit (100 per minute or 10 000 per day per application).

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::providers::http::{RateInfo, header_u64};

pub fn parse_rate_headers(headers: &HeaderMap) -> Option<RateInfo> {
    let remaining = header_u64(headers, "x-ratelimit-remaining");
    let reset = header_u64(headers, "x-ratelimit-reset");
    if remaining.is_none() && reset.is_none() {
        return None;
    }
    Some(RateInfo {
        remaining,
        reset_after: reset.map(Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_remaining_and_reset() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-limit",
            "100, 100;window=60, 10000;window=86400".parse().unwrap(),
        );
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", "3".parse().unwrap());
        assert_eq!(
            parse_rate_headers(&h),
            Some(RateInfo {
                remaining: Some(0),
                reset_after: Some(Duration::from_secs(3))
            })
        );
        assert_eq!(parse_rate_headers(&HeaderMap::new()), None);
    }
}
