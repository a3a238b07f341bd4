//! GET /sauvegardes: the state of the instance's backups, for holders and platform
//! administrators (no patient data; target addresses for administrators only).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use carnet_service::{BackupRun, BackupTargetStatus};

use crate::pages_auth::{SignedIn, idle_seconds, render};
use crate::{ApiError, AppState};

/// One run, as the page shows it.
struct RunLine {
    ok: bool,
    at: String,
    message: String,
}

struct TargetView {
    name: String,
    address: Option<String>,
    last_backup: Option<RunLine>,
    last_success: Option<RunLine>,
    bytes_added: String,
    duration: String,
    next_run: String,
    last_check: Option<RunLine>,
    last_data_check: Option<RunLine>,
    last_drill: Option<RunLine>,
    alerts: Vec<String>,
}

#[derive(Template)]
#[template(path = "backups.html")]
struct BackupsPage {
    targets: Vec<TargetView>,
    blur_seconds: u64,
    lock_seconds: u64,
}

fn line(run: Option<&BackupRun>) -> Option<RunLine> {
    run.map(|run| RunLine {
        ok: run.ok,
        at: run.finished_at.to_french_text(),
        message: run.message.clone(),
    })
}

/// Bytes in French units (octets).
fn bytes_text(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["o", "Ko", "Mo", "Go"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} o")
    } else {
        format!("{value:.1} {}", UNITS[unit]).replace('.', ",")
    }
}

fn view(status: BackupTargetStatus) -> TargetView {
    let success = status.last_success.as_ref();
    TargetView {
        bytes_added: success
            .and_then(|run| run.bytes_added)
            .map_or_else(|| "—".into(), bytes_text),
        duration: success.map_or_else(
            || "—".into(),
            |run| {
                let seconds =
                    (run.finished_at.unix_millis() - run.started_at.unix_millis()).max(0) / 1000;
                format!("{} min {:02} s", seconds / 60, seconds % 60)
            },
        ),
        next_run: status
            .next_run
            .map_or_else(|| "—".into(), carnet_domain::Timestamp::to_french_text),
        last_backup: line(status.last_backup.as_ref()),
        last_success: line(success),
        last_check: line(status.last_check.as_ref()),
        last_data_check: line(status.last_data_check.as_ref()),
        last_drill: line(status.last_drill.as_ref()),
        name: status.name,
        address: status.address,
        alerts: status.alerts,
    }
}

pub async fn page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let (blur_seconds, lock_seconds) = idle_seconds(&state);
    match state.services.backup_status(&signed_in.caller).await {
        Ok(targets) => render(
            &BackupsPage {
                targets: targets.into_iter().map(view).collect(),
                blur_seconds,
                lock_seconds,
            },
            StatusCode::OK,
        ),
        Err(error) => crate::pages::message_page(
            ApiError::from(error).status,
            "Sauvegardes",
            "L'état des sauvegardes est réservé aux titulaires et aux administrateurs.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::bytes_text;

    #[test]
    fn sizes_read_in_french_units() {
        assert_eq!(bytes_text(512), "512 o");
        assert_eq!(bytes_text(1536), "1,5 Ko");
        assert_eq!(bytes_text(5 * 1024 * 1024), "5,0 Mo");
    }
}
