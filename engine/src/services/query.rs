//! Checks of read filters shared by the REST API and the MCP tools, so both reject the same
//! input with the same message naming the field.

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::error::{Error, Result};
use crate::{catalogue, time};

/// `from` must not be after `to`.
pub fn check_order<T: PartialOrd>(from: Option<T>, to: Option<T>) -> Result<()> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(Error::invalid("from", "must not be after `to`")),
        _ => Ok(()),
    }
}

/// A metric name must be in the catalogue.
pub fn check_metric(field: &'static str, m: Option<&str>) -> Result<()> {
    match m {
        Some(name) if catalogue::metric(name).is_none() => {
            Err(Error::invalid(field, format!("unknown metric '{name}'")))
        }
        _ => Ok(()),
    }
}

/// A value that must be one of a fixed set.
pub fn one_of(field: &'static str, v: Option<&str>, allowed: &[&str]) -> Result<()> {
    match v {
        Some(x) if !allowed.contains(&x) => Err(Error::invalid(
            field,
            format!("must be one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// `from` and `to` as local dates (both inclusive), each optional.
pub fn date_bounds(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>)> {
    Ok((
        from.map(|s| time::parse_date("from", s)).transpose()?,
        to.map(|s| time::parse_date("to", s)).transpose()?,
    ))
}

/// An instant, or a date meaning the start of that UTC day (`end` = the start of the next day).
pub fn instant_or_date(field: &'static str, s: &str, end: bool) -> Result<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end {
            d.checked_add_days(Days::new(1)).unwrap_or(d)
        } else {
            d
        };
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    time::parse_instant(field, s)
}

/// An optional `[from, to)` range of instants.
pub type InstantRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Optional `from`/`to` instants-or-dates, checked for order.
pub fn instant_bounds(from: Option<&str>, to: Option<&str>) -> Result<InstantRange> {
    let from = from
        .map(|s| instant_or_date("from", s, false))
        .transpose()?;
    let to = to.map(|s| instant_or_date("to", s, true)).transpose()?;
    check_order(from, to)?;
    Ok((from, to))
}
