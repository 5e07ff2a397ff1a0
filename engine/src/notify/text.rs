//! Small text helpers shared by the channel renderers.

/// At most `max` characters, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A URL with its secret parts hidden: scheme and host stay, the path and query become the
/// last four characters, e.g. `https://discord.com/…Xy9Q`.
pub fn mask_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) => {
            let rest: String = format!(
                "{}{}",
                u.path(),
                u.query().map(|q| format!("?{q}")).unwrap_or_default()
            );
            let tail: String = rest
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}/…{tail}",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        Err(_) => "…".into(),
    }
}

/// A secret reduced to a fixed mask (its length is not revealed).
pub fn mask_secret(_: &str) -> String {
    "********".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_by_characters_and_masks() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo wörld", 6), "héllo…");
        assert_eq!(
            mask_url("https://discord.com/api/webhooks/1/abcdXy9Q"),
            "https://discord.com/…Xy9Q"
        );
    }
}
