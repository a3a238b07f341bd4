//! `carnet serve`: open (or create) the instance and answer HTTP until SIGTERM/SIGINT.
//!
//! The accept loop (plain HTTP or TLS, with device certificates) is
//! `carnet_http::serve`.

use std::sync::Arc;
use std::time::Duration;

use carnet_http::{AppState, HttpSettings};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn run(config: &Config) -> Result<(), CliError> {
    let identity = crate::tls::server_identity(config)?;
    let address = config.listen_address()?;
    let listener = TcpListener::bind(address).await.map_err(|error| {
        CliError::refusal(format!("impossible d'écouter sur {address} ({error})"))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|error| CliError::failure(format!("adresse d'écoute inconnue ({error})")))?;
    // Port 0 asks for any free port: the public address derived from it needs the real one.
    let mut config = config.clone();
    config.listen = bound.to_string();
    let config = &config;
    let instance = instance::open(config, OpenMode::CreateIfMissing).await?;
    if instance.created_key {
        say(&format!(
            "Nouvelle instance : clé créée dans {} (droits 0600). Gardez-en une copie hors de \
             cette machine : sans elle, rien ne peut être déchiffré.",
            config.instance_key_path().display()
        ));
    }
    if let Some(copy) = &instance.pre_migration_copy {
        say(&format!(
            "Copie de la base avant migration : {}",
            copy.display()
        ));
    }

    let settings = HttpSettings {
        https: config.serves_https(),
        body_limit_bytes: usize::try_from(config.body_limit_bytes).unwrap_or(usize::MAX),
        document_max_bytes: config.document_max_bytes,
        request_timeout: Duration::from_secs(config.request_timeout_seconds.into()),
        trusted_proxies: config.trusted_proxy_addresses()?,
        blur_after: Duration::from_secs(config.blur_after_seconds.into()),
        idle_lock: Duration::from_mins(config.idle_lock_minutes.into()),
    };
    let app = carnet_http::app(AppState::new(instance.services.clone(), settings));
    let tls = match identity {
        None => None,
        Some((chain, key)) => {
            let authority = instance
                .services
                .device_authority()
                .await
                .map_err(|error| {
                    CliError::failure(format!("autorité des appareils indisponible ({error})"))
                })?;
            Some(
                carnet_http::serve::tls_server_config(chain, key, authority.certificate_der())
                    .map_err(CliError::refusal)?,
            )
        }
    };

    let scheme = if tls.is_some() { "https" } else { "http" };
    say(&format!("Carnet écoute sur {scheme}://{bound}/"));
    crate::admin::print_setup_link_if_needed(config, &instance.services).await?;
    tracing::info!(%bound, scheme, "listening");

    warn_if_row_security_is_bypassed(&instance.store).await;
    let metrics = spawn_metrics(config)?;
    let instance = Arc::new(instance);
    let checkpoints = tokio::spawn(checkpoint_regularly(config.clone(), instance.clone()));
    let backups = if config.backup_targets.is_empty() {
        tracing::warn!("no backup target configured (backup_targets): no backups are taken");
        None
    } else {
        let job = crate::backup::BackupJob::new(config, instance.clone())?;
        Some(tokio::spawn(job.schedule()))
    };

    let graceful = carnet_http::serve::accept_until(
        listener,
        tls,
        app,
        instance.services.clone(),
        shutdown_signal(),
    )
    .await;

    say("Arrêt demandé : fin des requêtes en cours…");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time");
    }
    checkpoints.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    if let Some(backups) = backups {
        backups.abort();
    }
    // A last checkpoint, so the trail up to the stop is pinned outside the database.
    if let Err(error) = crate::audit::checkpoint(config, &instance, true).await {
        tracing::error!(error = %error, "final audit checkpoint failed");
    }
    instance.store.close().await;
    say("Carnet est arrêté.");
    Ok(())
}

/// The metrics listener, when `metrics_listen` is set.
fn spawn_metrics(config: &Config) -> Result<Option<tokio::task::JoinHandle<()>>, CliError> {
    let address = config
        .metrics_address()
        .map_err(|error| CliError::refusal(error.to_string()))?;
    Ok(address.map(|address| {
        tokio::spawn(async move {
            if let Err(error) = crate::metrics_export::serve(address).await {
                tracing::error!(%address, error = %error, "metrics listener failed");
            }
        })
    }))
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for shutdown signals; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

/// Every minute: signs due audit checkpoints (the entry and age thresholds decide which),
/// and resumes any interrupted key rotation.
/// A failure is logged and retried at the next tick: it never stops the server, but the
/// checkpoint age shows in the logs.
async fn checkpoint_regularly(config: Config, instance: Arc<crate::instance::Instance>) {
    let mut ticks = tokio::time::interval(Duration::from_mins(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match crate::audit::checkpoint(&config, &instance, false).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "audit checkpoints signed"),
            Err(error) => tracing::error!(error = %error, "audit checkpoint failed"),
        }
        // A key rotation interrupted (by a kill, a crash) resumes here.
        match crate::keys::resume_reencryption(&instance.services).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "patients moved to their practice's new key"),
            Err(error) => tracing::error!(error = %error, "key re-encryption failed"),
        }
    }
}

/// Warns when the PostgreSQL role escapes the care records' row-level security (a
/// superuser or BYPASSRLS role; ADR 0013): the practice filters still hold, the second
/// wall does not.
async fn warn_if_row_security_is_bypassed(store: &carnet_store::Store) {
    match store.bypasses_row_security().await {
        Ok(false) => {}
        Ok(true) => tracing::warn!(
            "the PostgreSQL role is a superuser or has BYPASSRLS: row-level security, the \
             second wall between practices, does not apply to it (give Carnet a role of its own)"
        ),
        Err(error) => tracing::warn!(
            error = %error.describe_without_secrets(),
            "the PostgreSQL role's row-level security was not checked"
        ),
    }
}
