//! What an admin does, as plain async functions shared by the command line
//! and the admin pages' server functions, so neither duplicates logic:
//! adding repositories and asking for synchronizations (`repositories`),
//! setting up and testing Git providers and picking repositories from an
//! organization (`providers`), and the webhook deliveries page with
//! "Create the webhook for me" (`webhooks`).

pub mod providers;
pub mod repositories;
pub mod webhooks;

use crate::api::admin::DiagnosisView;
use crate::azure::{AzureError, Diagnosis};

/// `2026-11-23 18:04 UTC`: times are shown in UTC, formatted on the server
/// so the hydrated page renders the same text.
pub fn fmt_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-11-23`.
pub fn fmt_date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A diagnosis as the pages show it.
pub fn diagnosis_view(d: &Diagnosis) -> DiagnosisView {
    DiagnosisView {
        code: d.code().to_owned(),
        title: d.title().into_owned(),
        hint: d.hint().into_owned(),
        field: d.field().as_str().to_owned(),
    }
}

/// An Azure error as the pages show it (its diagnosis, or its text).
pub fn error_view(e: &AzureError) -> DiagnosisView {
    match e.diagnosis() {
        Some(d) => diagnosis_view(d),
        None => DiagnosisView {
            code: e.code().to_owned(),
            title: "The request to Azure could not be made".into(),
            hint: e.to_string(),
            field: "hub".into(),
        },
    }
}

/// The diagnosis behind a stored failure message ending in `[code]`.
pub fn diagnosis_in_message(message: &str) -> Option<DiagnosisView> {
    let start = message.rfind('[')?;
    let end = start + message[start..].find(']')?;
    Diagnosis::from_code(&message[start + 1..end]).map(|d| diagnosis_view(&d))
}

/// `1.2 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_date(86_400), "1970-01-02");
        assert_eq!(human_size(10), "10 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        let d = diagnosis_in_message("Client secret is wrong [wrong_client_secret]").unwrap();
        assert_eq!(d.field, "secret");
        assert!(diagnosis_in_message("no code here").is_none());
    }
}
