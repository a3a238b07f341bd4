//! The French pages, rendered on the server (askama: compiled and auto-escaped).

use askama::Template;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use crate::ApiError;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage;

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage;

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

/// A French page with a title and one message (sign-in required, refusal, error).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(&MessagePage { title, message }, status)
}

/// Renders a page, or answers 500 (logged) if the template fails.
fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "page rendering failed");
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}

pub async fn home() -> Response {
    render(&HomePage, StatusCode::OK)
}

/// Unknown addresses: the error envelope under `/api`, a French page elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        ApiError::from_status(StatusCode::NOT_FOUND).into_response()
    } else {
        render(&NotFoundPage, StatusCode::NOT_FOUND)
    }
}
