//! Email over SMTP (lettre, rustls): STARTTLS, implicit TLS or plain, optional authentication,
//! and a multipart/alternative message with a text and an HTML part.

use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::event::Event;
use super::http::Attempt;
use super::settings::{SmtpSecurity, SmtpSettings};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub to: String,
}

pub fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    s.parse::<Mailbox>()
        .map_err(|e| format!("not an email address: {e}"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn message(from: &str, config: &Config, event: &Event) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("smtp_from: {e}"))?;
    let text = format!(
        "{}\n\n{}\n\nSeverity: {}\nCategory: {}\nEvent: {} ({})\n",
        event.title,
        event.message,
        event.severity.as_str(),
        event.category().as_str(),
        event.kind.as_str(),
        event.id
    );
    let html = format!(
        "<!doctype html><html><body><h2>{}</h2><p>{}</p><table><tr><th align=\"left\">Severity</th><td>{}</td></tr><tr><th align=\"left\">Category</th><td>{}</td></tr><tr><th align=\"left\">Event</th><td>{}</td></tr></table></body></html>",
        escape(&event.title),
        escape(&event.message),
        event.severity.as_str(),
        event.category().as_str(),
        event.kind.as_str()
    );
    Message::builder()
        .from(from)
        .to(parse_mailbox(&config.to)?)
        .subject(format!("[VitaSync] {}", event.title))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("building the message: {e}"))
}

pub async fn send(
    smtp: Option<&SmtpSettings>,
    config: &Config,
    event: &Event,
    timeout: Duration,
) -> Attempt {
    let Some(smtp) = smtp else {
        return Attempt::refused("no SMTP server is configured (VITASYNC_SMTP_HOST)");
    };
    let msg = match message(&smtp.from, config, event) {
        Ok(m) => m,
        Err(e) => return Attempt::refused(e),
    };
    crate::providers::http::install_crypto_provider();
    let builder = match smtp.security {
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &smtp.host,
        )),
    };
    let mut builder = match builder {
        Ok(b) => b.port(smtp.port).timeout(Some(timeout)),
        Err(e) => return Attempt::refused(format!("SMTP: {e}")),
    };
    if let Some((user, pass)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    let started = Instant::now();
    match builder.build().send(msg).await {
        Ok(res) => Attempt {
            status: res.code().to_string().parse().ok(),
            error: None,
            latency: started.elapsed(),
            transient: false,
        },
        Err(e) => Attempt {
            status: e.status().and_then(|c| c.to_string().parse().ok()),
            error: Some(format!("SMTP: {e}")),
            latency: started.elapsed(),
            transient: e.is_transient() || e.is_timeout() || e.status().is_none(),
        },
    }
}
