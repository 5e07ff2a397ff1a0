//! The `health_review` prompt: asks the assistant to review a user's last N days with the tools.

use chrono::{Days, Utc};
use rmcp::model::{
    ErrorData, GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role,
};

use crate::tools::Ctx;

pub(crate) fn list() -> Vec<Prompt> {
    vec![Prompt::new(
        "health_review",
        Some("Review one user's health over their last N days using the VitaSync tools."),
        Some(vec![
            PromptArgument::new("user_id")
                .with_description("The user to review (an id from list_users).")
                .with_required(true),
            PromptArgument::new("days")
                .with_description("How many days to review, 1-365 (default 14).")
                .with_required(false),
        ]),
    )]
}

fn arg(args: &Option<JsonObject>, name: &str) -> Option<String> {
    let v = args.as_ref()?.get(name)?;
    Some(match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

pub(crate) async fn get(
    ctx: &Ctx<'_>,
    name: &str,
    args: Option<JsonObject>,
) -> Result<GetPromptResult, ErrorData> {
    if name != "health_review" {
        return Err(ErrorData::invalid_params(
            format!("no prompt named '{name}'; the prompt is health_review"),
            None,
        ));
    }
    let raw_user = arg(&args, "user_id").ok_or_else(|| {
        ErrorData::invalid_params(
            "argument `user_id` is required (an id from list_users)",
            None,
        )
    })?;
    let days = match arg(&args, "days") {
        None => 14,
        Some(d) => d
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=365).contains(d))
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    "argument `days` must be a whole number from 1 to 365",
                    None,
                )
            })?,
    };
    let user = ctx
        .user(&raw_user)
        .await
        .map_err(|e| ErrorData::invalid_params(e.0, None))?;
    let to = Utc::now().date_naive();
    let from = to
        .checked_sub_days(Days::new(u64::from(days) - 1))
        .unwrap_or(to);
    let id = user.id;
    let text = format!(
        "Review the health of user {name} (user_id {id}) over the last {days} days, {from} to {to}.\n\n\
         1. Call get_health_context with user_id {id} for the overall picture and summary.\n\
         2. Call get_health_scores with from {from} and to {to} and describe how the overall, sleep, \
            activity, cardio and recovery scores moved.\n\
         3. Call get_anomaly_alerts with from {from} and to {to}; explain each open warning or \
            critical anomaly in plain words.\n\
         4. Call get_correlations (min_strength moderate) and mention relationships that help \
            explain what you see.\n\
         5. Where useful, call query_health_metrics with granularity daily and get_events for the \
            same dates to check details (sleep, workouts).\n\n\
         Finish with three short sections: what went well, what to watch, and suggestions. Only \
         use numbers the tools returned. This is not a diagnosis: suggest a clinician for anything \
         concerning.",
        name = user.display_name.as_deref().unwrap_or(&user.external_id),
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("Health review of the last {days} days")),
    )
}
