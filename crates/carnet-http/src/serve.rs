//! The accept loop: plain HTTP or TLS on one listener (hyper-util), with mutual TLS for
//! registered devices (ADR 0008).
//!
//! On the TLS listener, a client may present a certificate. rustls checks it chains to the
//! instance's device authority (a certificate from anywhere else fails the handshake);
//! then, before a single request is read, the device's certificate is looked up: revoked
//! (the device was blocked), expired or unknown, the connection is closed. A client
//! without a certificate (a browser) is served as usual, its device named by its cookie.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{CertifiedDevice, ClientAddress};

/// How long a client gets to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rustls server configuration: the server's certificate chain and key, and client
/// certificates accepted (not required) when they chain to the device authority.
pub fn tls_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    device_authority_der: &[u8],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(device_authority_der.to_vec()))
        .map_err(|error| format!("autorité des appareils illisible ({error})"))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|error| format!("vérification des certificats d'appareil impossible ({error})"))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("configuration TLS impossible ({error})"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|error| format!("le certificat et la clé TLS ne vont pas ensemble ({error})"))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// Serves connections (plain, or TLS with `tls`) until `shutdown` completes; returns the
/// handle that waits for the open connections to finish.
pub async fn accept_until(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    services: carnet_service::Services,
    shutdown: impl Future<Output = ()>,
) -> GracefulShutdown {
    let acceptor = tls.map(TlsAcceptor::from);
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let acceptor = acceptor.clone();
                let app = app.clone();
                let services = services.clone();
                tokio::spawn(async move {
                    let address = ClientAddress(peer.ip());
                    let Some(acceptor) = acceptor else {
                        serve_io(&builder, watcher, stream, app, address, None).await;
                        return;
                    };
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    let Ok(Ok(tls_stream)) = handshake else {
                        tracing::debug!("TLS handshake failed or timed out");
                        return;
                    };
                    let presented = tls_stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|certificate| certificate.as_ref().to_vec());
                    let device = match presented {
                        None => None,
                        Some(certificate) => {
                            let caller = carnet_service::Caller {
                                client_address: Some(address.0),
                                ..carnet_service::Caller::new(carnet_service::Actor::Anonymous)
                            };
                            match services.certified_device(&caller, &certificate).await {
                                Ok(device) => Some(CertifiedDevice(device)),
                                Err(error) => {
                                    tracing::info!(
                                        error = %error,
                                        "device certificate refused; connection closed"
                                    );
                                    return;
                                }
                            }
                        }
                    };
                    serve_io(&builder, watcher, tls_stream, app, address, device).await;
                });
            }
            () = &mut shutdown => break,
        }
    }

    graceful
}

/// Serves one connection, with the connection's facts in every request's extensions.
async fn serve_io<I>(
    builder: &Builder<TokioExecutor>,
    watcher: Watcher,
    io: I,
    app: axum::Router,
    address: ClientAddress,
    device: Option<CertifiedDevice>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let with_facts = tower::ServiceExt::map_request(
        app,
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(address);
            if let Some(device) = device {
                request.extensions_mut().insert(device);
            }
            request
        },
    );
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(with_facts));
    let _ = watcher.watch(connection.into_owned()).await;
}

/// The metrics listener (`metrics_listen`): `GET /metrics` answers `render()` in
/// Prometheus' text format, nothing else is served; no session, no TLS (the binary only
/// accepts loopback and private addresses for it). Runs until the task is aborted.
pub async fn serve_metrics<F>(listener: TcpListener, render: F) -> std::io::Result<()>
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = render();
            async move {
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    body,
                )
            }
        }),
    );
    axum::serve(listener, app).await
}
