//! The French pages of passkeys (enrolment, "my passkeys": add, rename, remove) and of
//! the first administrator's setup. Registering a passkey needs the browser's WebAuthn
//! API, so those buttons are driven by `carnet.js` against the JSON API; renaming and
//! removing are plain forms.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::pages_auth::{
    FlowContext, FormPage, SignedIn, field, idle_seconds, redirect_with_cookie, render, with_error,
};
use crate::session::session_cookie_header;
use crate::{ApiError, AppState};

struct PasskeyRow {
    id: String,
    name: String,
    created_at: String,
    last_used_at: String,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    title: &'static str,
    intro: &'static str,
    error: String,
    /// The account's first second factor (no list, no idle timers yet).
    enrolment: bool,
    passkeys: Vec<PasskeyRow>,
    next: &'static str,
    blur_seconds: u64,
    lock_seconds: u64,
}

/// The passkey enrolment of a platform administrator (mandatory before anything else).
pub fn enrolment_page(state: &AppState, error: &str) -> Response {
    if !state.services.passkeys_enabled() {
        return crate::pages::message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Clés d'accès non configurées",
            "L'adresse publique de Carnet (public_url) doit être configurée pour enregistrer une clé d'accès.",
        );
    }
    let (blur_seconds, lock_seconds) = idle_seconds(state);
    render(
        &PasskeysPage {
            title: "Enregistrer votre clé d'accès",
            intro: "Un administrateur se connecte avec une clé d'accès (téléphone, clé de sécurité ou ordinateur avec empreinte ou code). Donnez-lui un nom, puis suivez les instructions de votre navigateur.",
            error: error.to_owned(),
            enrolment: true,
            passkeys: Vec::new(),
            next: "/espace",
            blur_seconds,
            lock_seconds,
        },
        StatusCode::OK,
    )
}

/// "My passkeys".
pub async fn passkeys(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    passkeys_page(&state, &signed_in, "").await
}

async fn passkeys_page(state: &AppState, signed_in: &SignedIn, error: &str) -> Response {
    let (blur_seconds, lock_seconds) = idle_seconds(state);
    match state.services.my_passkeys(&signed_in.token).await {
        Ok(list) => render(
            &PasskeysPage {
                title: "Mes clés d'accès",
                intro: "Une clé d'accès remplace le mot de passe et le code à 6 chiffres : un seul geste (empreinte, visage ou code de l'appareil) suffit pour vous connecter.",
                error: error.to_owned(),
                enrolment: false,
                passkeys: list
                    .into_iter()
                    .map(|passkey| PasskeyRow {
                        id: passkey.id.to_string(),
                        name: passkey.name,
                        created_at: passkey.created_at.to_french_text(),
                        last_used_at: passkey.last_used_at.map_or_else(
                            || "jamais".into(),
                            carnet_domain::Timestamp::to_french_text,
                        ),
                    })
                    .collect(),
                next: "/cles-d-acces",
                blur_seconds,
                lock_seconds,
            },
            if error.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
        ),
        Err(error) => crate::pages::message_page(
            ApiError::from(error).status,
            "Clés d'accès indisponibles",
            "Réessayez dans un instant.",
        ),
    }
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

pub async fn rename(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<NameForm>,
) -> Response {
    let Ok(passkey_id) = id.parse() else {
        return passkeys_page(&state, &signed_in, "Clé d'accès inconnue.").await;
    };
    match state
        .services
        .rename_passkey(&signed_in.caller, &signed_in.token, passkey_id, &form.name)
        .await
    {
        Ok(()) => Redirect::to("/cles-d-acces").into_response(),
        Err(error) => passkeys_page(&state, &signed_in, &error.to_string()).await,
    }
}

pub async fn remove(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let Ok(passkey_id) = id.parse() else {
        return passkeys_page(&state, &signed_in, "Clé d'accès inconnue.").await;
    };
    match state
        .services
        .remove_passkey(&signed_in.caller, &signed_in.token, passkey_id)
        .await
    {
        Ok(()) => Redirect::to("/cles-d-acces").into_response(),
        Err(error) => passkeys_page(&state, &signed_in, &error.to_string()).await,
    }
}

// ---- the first administrator --------------------------------------------------------------

fn setup_page(link: &str) -> FormPage {
    let mut page = FormPage::new(
        "Installation de Carnet",
        "/installation",
        vec![
            field("name", "Votre nom", "text", "name"),
            field(
                "login",
                "Votre adresse e-mail (votre identifiant)",
                "email",
                "username",
            ),
            field(
                "password",
                "Choisissez un mot de passe",
                "password",
                "new-password",
            ),
        ],
        "Créer le compte administrateur",
    );
    page.intro = "Créez le premier compte administrateur de la plateforme. Au moins 12 caractères avec majuscule, minuscule, chiffre et caractère spécial ; vous enregistrerez ensuite une clé d'accès.".into();
    page.hidden_name = "link";
    link.clone_into(&mut page.hidden_value);
    page
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    jeton: String,
}

pub async fn setup_form(Query(query): Query<SetupQuery>) -> Response {
    if query.jeton.is_empty() {
        return crate::pages::message_page(
            StatusCode::BAD_REQUEST,
            "Lien d'installation incomplet",
            "Ouvrez le lien complet affiché par « carnet serve » ou « carnet admin bootstrap ».",
        );
    }
    render(&setup_page(&query.jeton), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct SetupForm {
    link: String,
    name: String,
    login: String,
    password: String,
}

pub async fn setup_submit(
    State(state): State<AppState>,
    context: FlowContext,
    headers: axum::http::HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    match state
        .services
        .complete_setup(
            &context.caller,
            &form.link,
            &form.name,
            &form.login,
            &form.password,
        )
        .await
    {
        Ok(issued) => {
            let response = redirect_with_cookie(
                "/connexion/enrolement",
                session_cookie_header(issued.token.expose()),
            );
            crate::devices::after_sign_in(
                &state,
                &headers,
                "/installation",
                &context.caller,
                issued.token.expose(),
                response,
            )
            .await
        }
        Err(error) => with_error(setup_page(&form.link), &error),
    }
}
