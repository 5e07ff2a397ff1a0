//! The Fitbit data endpoints as typed calls, all through the shared [`ProviderHttp`] with the
//! user's rate budget (Fitbit limits each user of an application to 150 calls an hour and says
//! how many are left in `Fitbit-Rate-Limit-*` headers on every response).

use std::time::Duration;

use chrono::NaiveDate;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use super::api::{
    ActivityListResponse, BreathingResponse, DailyActivity, FatResponse, HeartResponse,
    HrvResponse, ProfileResponse, SkinTempResponse, SleepResponse, Spo2Response, WeightResponse,
};
use crate::providers::http::{RateInfo, header_u64};
use crate::providers::{Budget, ProviderError, ProviderHttp};

/// Reads `Fitbit-Rate-Limit-Remaining` and `Fitbit-Rate-Limit-Reset` (seconds to the top of
/// the hour, when the window resets).
pub fn rate_headers(headers: &HeaderMap) -> Option<RateInfo> {
    let remaining = header_u64(headers, "fitbit-rate-limit-remaining");
    let reset = header_u64(headers, "fitbit-rate-limit-reset");
    if remaining.is_none() && reset.is_none() {
        return None;
    }
    Some(RateInfo {
        remaining,
        reset_after: reset.map(Duration::from_secs),
    })
}

/// The budget a user's calls draw on: the user's own when their Fitbit id is known.
pub fn budget(provider_user_id: Option<&str>) -> Budget {
    match provider_user_id {
        Some(id) => Budget::per_user(super::ID, id).with_headers(rate_headers),
        // Without an account the remaining-calls header cannot be attributed to anyone, so it
        // is not read (it would pause every user of the application).
        None => Budget::app(super::ID),
    }
}

pub struct Client<'a> {
    pub http: &'a ProviderHttp,
    pub api: &'a str,
    pub token: &'a str,
    pub budget: Budget,
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl Client<'_> {
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ProviderError> {
        let url = format!("{}{path}", self.api);
        self.http
            .get_json(&self.budget, &url, self.token, query)
            .await
    }

    /// Follows a `pagination.next` link. Only its path and query are used, on the configured
    /// API base: the bearer token never goes to a host taken from a response body.
    pub async fn follow<T: DeserializeOwned>(&self, link: &str) -> Result<T, ProviderError> {
        let base = url::Url::parse("https://api.fitbit.com/").expect("static URL");
        let next = base
            .join(link)
            .map_err(|e| ProviderError::Malformed(format!("pagination.next '{link}': {e}")))?;
        let mut url = format!("{}{}", self.api, next.path());
        if let Some(q) = next.query() {
            url.push('?');
            url.push_str(q);
        }
        self.http
            .get_json(&self.budget, &url, self.token, &[])
            .await
    }

    pub async fn profile(&self) -> Result<ProfileResponse, ProviderError> {
        self.get("/1/user/-/profile.json", &[]).await
    }

    pub async fn daily_activity(&self, date: NaiveDate) -> Result<DailyActivity, ProviderError> {
        self.get(
            &format!("/1/user/-/activities/date/{}.json", day(date)),
            &[],
        )
        .await
    }

    /// Minute-by-minute heart rate of one date, with that date's resting heart rate.
    pub async fn heart_intraday(&self, date: NaiveDate) -> Result<HeartResponse, ProviderError> {
        self.get(
            &format!("/1/user/-/activities/heart/date/{}/1d/1min.json", day(date)),
            &[],
        )
        .await
    }

    /// Daily heart summaries (resting heart rate) for a range of at most a year.
    pub async fn heart_range(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<HeartResponse, ProviderError> {
        self.get(
            &format!(
                "/1/user/-/activities/heart/date/{}/{}.json",
                day(from),
                day(to)
            ),
            &[],
        )
        .await
    }

    pub async fn hrv(&self, from: NaiveDate, to: NaiveDate) -> Result<HrvResponse, ProviderError> {
        self.get(
            &format!("/1/user/-/hrv/date/{}/{}.json", day(from), day(to)),
            &[],
        )
        .await
    }

    pub async fn spo2(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Spo2Response, ProviderError> {
        self.get(
            &format!("/1/user/-/spo2/date/{}/{}.json", day(from), day(to)),
            &[],
        )
        .await
    }

    pub async fn breathing_rate(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BreathingResponse, ProviderError> {
        self.get(
            &format!("/1/user/-/br/date/{}/{}.json", day(from), day(to)),
            &[],
        )
        .await
    }

    pub async fn skin_temperature(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SkinTempResponse, ProviderError> {
        self.get(
            &format!("/1/user/-/temp/skin/date/{}/{}.json", day(from), day(to)),
            &[],
        )
        .await
    }

    pub async fn sleep(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SleepResponse, ProviderError> {
        self.get(
            &format!("/1.2/user/-/sleep/date/{}/{}.json", day(from), day(to)),
            &[],
        )
        .await
    }

    pub async fn weight(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<WeightResponse, ProviderError> {
        self.get(
            &format!(
                "/1/user/-/body/log/weight/date/{}/{}.json",
                day(from),
                day(to)
            ),
            &[],
        )
        .await
    }

    pub async fn body_fat(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<FatResponse, ProviderError> {
        self.get(
            &format!("/1/user/-/body/log/fat/date/{}/{}.json", day(from), day(to)),
            &[],
        )
        .await
    }

    /// The first page of logged activities from local date `after` on, oldest first. Fitbit
    /// only accepts `offset=0`; later pages come from `pagination.next`.
    pub async fn activity_list(
        &self,
        after: NaiveDate,
    ) -> Result<ActivityListResponse, ProviderError> {
        self.get(
            "/1/user/-/activities/list.json",
            &[
                ("afterDate", day(after)),
                ("sort", "asc".into()),
                ("offset", "0".into()),
                ("limit", "100".into()),
            ],
        )
        .await
    }
}
