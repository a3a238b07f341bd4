//! The committed OpenAPI document must be the one the code generates.
//! Regenerate with `CARNET_UPDATE_GENERATED=1 cargo nextest run -p carnet-http generated`.

use std::path::PathBuf;

#[test]
fn the_committed_openapi_document_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/api/openapi.json");
    let generated = carnet_http::openapi_document()
        .to_pretty_json()
        .expect("serialises")
        + "\n";
    if std::env::var("CARNET_UPDATE_GENERATED").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &generated).expect("write");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/api/openapi.json is stale: run CARNET_UPDATE_GENERATED=1 cargo nextest run -p carnet-http generated"
    );
}

#[test]
fn the_document_describes_every_api_route_with_the_error_envelope() {
    let document = carnet_http::openapi_document();
    let paths: Vec<&str> = document.paths.paths.keys().map(String::as_str).collect();
    for expected in [
        "/healthz",
        "/readyz",
        "/api/v1/practices",
        "/api/v1/practices/{practice_id}/members",
        "/api/v1/practices/{practice_id}/members/{member_id}/professional-id-decisions",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    let json = document.to_json().expect("serialises");
    assert!(json.contains("ErrorEnvelope"));
}
