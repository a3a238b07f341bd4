//! Static assets compiled into the binary: nothing is read from disk at run time.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// (file name, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "carnet.css",
        "text/css; charset=utf-8",
        include_str!("../static/carnet.css"),
    ),
    (
        "carnet.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/carnet.js"),
    ),
];

pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, content)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Assets change with the binary: revalidate rather than cache blindly.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *content,
        )
            .into_response(),
        None => ApiError::from_status(StatusCode::NOT_FOUND).into_response(),
    }
}
