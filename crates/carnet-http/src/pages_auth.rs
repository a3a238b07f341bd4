//! The French pages of activation, sign-in, second factor, lock screen, sessions and the
//! signed-in home. Plain HTML forms posted to the same origin: they work without
//! JavaScript, and the session cookie is set by the server (never readable by scripts).

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use carnet_service::{Actor, Caller, ServiceError};
use serde::Deserialize;

use crate::api::{caller_of, caller_or_anonymous};
use crate::session::{SessionToken, clear_session_cookie, session_cookie_header};
use crate::{ApiError, AppState, SessionProblem};

pub(crate) struct Field {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    required: bool,
}

pub(crate) const fn field(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
) -> Field {
    Field {
        name,
        label,
        kind,
        autocomplete,
        required: true,
    }
}

#[derive(Template)]
#[template(path = "form_page.html")]
pub(crate) struct FormPage {
    pub(crate) title: &'static str,
    pub(crate) intro: String,
    pub(crate) error: String,
    pub(crate) action: String,
    pub(crate) fields: Vec<Field>,
    pub(crate) submit: &'static str,
    pub(crate) qr_svg: String,
    pub(crate) secret: String,
    pub(crate) footer_link: &'static str,
    pub(crate) footer_text: &'static str,
    /// A form with only its button (no fields).
    pub(crate) bare_form: bool,
    /// A hidden field carried by the form (the setup link's secret).
    pub(crate) hidden_name: &'static str,
    pub(crate) hidden_value: String,
    /// A "sign in with a passkey" button (label; empty: none) and where it leads.
    pub(crate) passkey_button: &'static str,
    pub(crate) passkey_next: &'static str,
}

impl FormPage {
    pub(crate) fn new(
        title: &'static str,
        action: &str,
        fields: Vec<Field>,
        submit: &'static str,
    ) -> Self {
        Self {
            title,
            intro: String::new(),
            error: String::new(),
            action: action.to_owned(),
            fields,
            submit,
            qr_svg: String::new(),
            secret: String::new(),
            footer_link: "",
            footer_text: "",
            bare_form: false,
            hidden_name: "",
            hidden_value: String::new(),
            passkey_button: "",
            passkey_next: "/espace",
        }
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage {
    codes: Vec<String>,
}

#[derive(Template)]
#[template(path = "space.html")]
struct SpacePage {
    role: &'static str,
    practice_id: Option<String>,
    holder: bool,
    /// Sees the instance's backups (holders and platform administrators).
    sees_backups: bool,
    notices: Vec<String>,
    care_records_unlocked: bool,
    blur_seconds: u64,
    lock_seconds: u64,
}

struct SessionRow {
    id: String,
    created_at: String,
    last_seen_at: String,
    state: &'static str,
    revocable: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    sessions: Vec<SessionRow>,
    blur_seconds: u64,
    lock_seconds: u64,
}

pub(crate) fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "page rendering failed");
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}

pub(crate) fn with_error(mut page: FormPage, error: &ServiceError) -> Response {
    page.error = error.to_string();
    let status = ApiError::from(ServiceError::Authentication {
        message: String::new(),
    })
    .status;
    let status = match error {
        ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::AccountLocked => StatusCode::FORBIDDEN,
        ServiceError::Unavailable(_) | ServiceError::Randomness => StatusCode::SERVICE_UNAVAILABLE,
        _ => status,
    };
    render(&page, status)
}

pub(crate) fn redirect_with_cookie(to: &str, cookie: HeaderValue) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// A caller and the session token, for the sign-in flow pages.
pub struct FlowContext {
    pub(crate) caller: Caller,
    pub(crate) token: Option<String>,
}

impl FromRequestParts<AppState> for FlowContext {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = caller_or_anonymous(parts, &state.settings);
        let token = parts
            .extensions
            .get::<SessionToken>()
            .map(|token| token.0.clone());
        Ok(Self { caller, token })
    }
}

/// A signed-in page's caller; a locked session gets the lock screen instead, and no
/// session the sign-in page.
pub struct SignedIn {
    pub(crate) caller: Caller,
    pub(crate) token: String,
    /// The session as found active (the records capabilities are asked with it).
    pub(crate) active: carnet_service::ActiveSession,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .extensions
            .get::<SessionToken>()
            .map(|token| token.0.clone());
        let active = parts
            .extensions
            .get::<carnet_service::ActiveSession>()
            .cloned();
        match (caller_of(parts, &state.settings), token, active) {
            (Some(caller), Some(token), Some(active)) => Ok(Self {
                caller,
                token,
                active,
            }),
            _ => Err(match parts.extensions.get::<SessionProblem>() {
                Some(SessionProblem::Locked) => lock_screen(parts.uri.path(), ""),
                Some(SessionProblem::SecondFactorRequired) => {
                    Redirect::to("/connexion/second-facteur").into_response()
                }
                Some(SessionProblem::PasswordExpired) => {
                    Redirect::to("/mot-de-passe").into_response()
                }
                Some(SessionProblem::DevicePending) => waiting_page(),
                _ => Redirect::to("/connexion").into_response(),
            }),
        }
    }
}

/// The password change page's caller: signed in, or signed in with an expired password
/// (then this page is the only one served).
pub struct PasswordPageCaller {
    caller: Caller,
    token: String,
    expired: bool,
}

impl FromRequestParts<AppState> for PasswordPageCaller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let expired = parts
            .extensions
            .get::<crate::session::ExpiredPasswordActor>()
            .is_some();
        if expired
            && let (Ok(crate::api::PasswordChanger(caller)), Some(SessionToken(token))) = (
                crate::api::PasswordChanger::from_request_parts(parts, state).await,
                parts.extensions.get::<SessionToken>(),
            )
        {
            return Ok(Self {
                caller,
                token: token.clone(),
                expired,
            });
        }
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        Ok(Self {
            caller: signed_in.caller,
            token: signed_in.token,
            expired: false,
        })
    }
}

/// What a device waiting for approval shows instead of any practice page.
pub fn waiting_page() -> Response {
    crate::pages::message_page(
        StatusCode::FORBIDDEN,
        "Appareil en attente d'approbation",
        "Vous êtes connecté·e, mais cet appareil n'est pas encore approuvé : un titulaire du cabinet doit l'approuver (page « Appareils du cabinet »). Rechargez cette page ensuite. Vous pouvez déjà gérer vos sessions, vos clés d'accès et vos appareils.",
    )
}

/// The lock screen: nothing of the previous page, only the password form.
pub fn lock_screen(back_to: &str, error: &str) -> Response {
    let mut page = FormPage::new(
        "Session verrouillée",
        &format!("/deverrouiller?retour={}", encode_path(back_to)),
        vec![field(
            "password",
            "Mot de passe",
            "password",
            "current-password",
        )],
        "Déverrouiller",
    );
    page.intro = "Votre session s'est verrouillée après une période d'inactivité. Saisissez votre mot de passe pour reprendre.".into();
    error.clone_into(&mut page.error);
    page.footer_link = "/connexion";
    page.footer_text = "Se connecter avec un autre compte";
    render(&page, StatusCode::LOCKED)
}

fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'/' | b'_' | b'.' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

// ---- sign-in ----------------------------------------------------------------------------

fn login_page() -> FormPage {
    let mut page = FormPage::new(
        "Connexion",
        "/connexion",
        vec![
            field("login", "Identifiant (adresse e-mail)", "email", "username"),
            field("password", "Mot de passe", "password", "current-password"),
        ],
        "Se connecter",
    );
    page.footer_link = "/activation";
    page.footer_text = "Première connexion ? Activez votre compte avec le code reçu par téléphone";
    page
}

pub async fn login_form(State(state): State<AppState>) -> Response {
    render(&login_page_for(&state), StatusCode::OK)
}

/// The sign-in page, with the passkey button when passkeys are configured.
fn login_page_for(state: &AppState) -> FormPage {
    let mut page = login_page();
    if state.services.passkeys_enabled() {
        page.passkey_button = "Se connecter avec une clé d'accès";
    }
    page
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
}

pub async fn login_submit(
    State(state): State<AppState>,
    context: FlowContext,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    match state
        .services
        .login(&context.caller, &form.login, &form.password)
        .await
    {
        Ok(issued) => {
            let next = if issued.needs_enrolment {
                "/connexion/enrolement"
            } else {
                "/connexion/second-facteur"
            };
            let response = redirect_with_cookie(next, session_cookie_header(issued.token.expose()));
            crate::devices::after_sign_in(
                &state,
                &headers,
                "/connexion",
                &context.caller,
                issued.token.expose(),
                response,
            )
            .await
        }
        Err(error) => with_error(login_page_for(&state), &error),
    }
}

fn second_factor_page() -> FormPage {
    let mut page = FormPage::new(
        "Second facteur",
        "/connexion/second-facteur",
        vec![field(
            "code",
            "Code à 6 chiffres de votre application",
            "text",
            "one-time-code",
        )],
        "Vérifier",
    );
    page.intro =
        "Ouvrez votre application d'authentification et saisissez le code affiché pour Carnet."
            .into();
    page.footer_link = "/connexion/secours";
    page.footer_text = "Téléphone perdu ? Utiliser un code de secours";
    page
}

pub async fn second_factor_form(State(state): State<AppState>, context: FlowContext) -> Response {
    let Some(token) = context.token else {
        return Redirect::to("/connexion").into_response();
    };
    let Ok(options) = state.services.second_factor_options(&token).await else {
        return Redirect::to("/connexion").into_response();
    };
    if options.needs_enrolment {
        return Redirect::to("/connexion/enrolement").into_response();
    }
    let mut page = second_factor_page();
    if options.passkeys {
        page.passkey_button = "Utiliser ma clé d'accès";
    }
    if !options.totp {
        page.fields.clear();
        page.intro = "Confirmez votre connexion avec votre clé d'accès.".into();
        page.footer_text = "Clé perdue ? Utiliser un code de secours";
    }
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    context: FlowContext,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(token) = context.token else {
        return Redirect::to("/connexion").into_response();
    };
    match state
        .services
        .verify_totp(&context.caller, &token, &form.code)
        .await
    {
        Ok(Some(codes)) => render(&RecoveryCodesPage { codes }, StatusCode::OK),
        Ok(None) => Redirect::to("/espace").into_response(),
        Err(error) => with_error(second_factor_page(), &error),
    }
}

fn recovery_page() -> FormPage {
    FormPage::new(
        "Code de secours",
        "/connexion/secours",
        vec![field("code", "Un de vos codes de secours", "text", "off")],
        "Vérifier",
    )
}

pub async fn recovery_form() -> Response {
    render(&recovery_page(), StatusCode::OK)
}

pub async fn recovery_submit(
    State(state): State<AppState>,
    context: FlowContext,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(token) = context.token else {
        return Redirect::to("/connexion").into_response();
    };
    match state
        .services
        .use_recovery_code(&context.caller, &token, &form.code)
        .await
    {
        Ok(()) => Redirect::to("/espace").into_response(),
        Err(error) => with_error(recovery_page(), &error),
    }
}

// ---- activation and enrolment -------------------------------------------------------------

fn activation_page() -> FormPage {
    let mut page = FormPage::new(
        "Activer mon compte",
        "/activation",
        vec![
            field(
                "code",
                "Code d'activation reçu par téléphone",
                "text",
                "one-time-code",
            ),
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
        "Activer",
    );
    page.intro = "Au moins 12 caractères avec majuscule, minuscule, chiffre et caractère spécial ; une phrase de plusieurs mots est idéale.".into();
    page
}

pub async fn activation_form() -> Response {
    render(&activation_page(), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ActivationForm {
    code: String,
    login: String,
    password: String,
}

pub async fn activation_submit(
    State(state): State<AppState>,
    context: FlowContext,
    headers: axum::http::HeaderMap,
    Form(form): Form<ActivationForm>,
) -> Response {
    match state
        .services
        .activate(&context.caller, &form.code, &form.login, &form.password)
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
                "/activation",
                &context.caller,
                issued.token.expose(),
                response,
            )
            .await
        }
        Err(error) => with_error(activation_page(), &error),
    }
}

pub async fn enrolment_form(State(state): State<AppState>, context: FlowContext) -> Response {
    let Some(token) = context.token else {
        return Redirect::to("/connexion").into_response();
    };
    match state.services.second_factor_options(&token).await {
        Ok(options) if options.admin => {
            return crate::pages_passkeys::enrolment_page(&state, "");
        }
        Ok(_) => {}
        Err(_) => return Redirect::to("/connexion").into_response(),
    }
    match state.services.start_totp_enrolment(&token).await {
        Ok(enrolment) => {
            let mut page = second_factor_page();
            page.title = "Enregistrer votre second facteur";
            page.action = "/connexion/second-facteur".into();
            page.intro = "Scannez ce code avec une application d'authentification (FreeOTP, Aegis, Google Authenticator…), puis saisissez le code à 6 chiffres qu'elle affiche.".into();
            page.qr_svg = qr_svg(&enrolment.uri);
            page.secret = enrolment.secret_base32;
            page.footer_link = "";
            render(&page, StatusCode::OK)
        }
        Err(error) => with_error(second_factor_page(), &error),
    }
}

/// The QR code as inline SVG (presentation attributes only: allowed by the CSP).
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build();
            svg.split_once("?>")
                .map_or(svg.clone(), |(_, rest)| rest.to_owned())
        }
        Err(_) => String::new(),
    }
}

// ---- signed in ------------------------------------------------------------------------------

pub(crate) fn idle_seconds(state: &AppState) -> (u64, u64) {
    (
        state.settings.blur_after.as_secs(),
        state.settings.idle_lock.as_secs(),
    )
}

pub async fn space(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let (blur_seconds, lock_seconds) = idle_seconds(&state);
    let (role, practice_id, holder) = match &signed_in.caller.actor {
        Actor::Member {
            practice_id, role, ..
        } => (
            role.label_fr(),
            Some(practice_id.to_string()),
            *role == carnet_domain::Role::Holder,
        ),
        Actor::PlatformAdmin(_) => ("administrateur de la plateforme", None, false),
        Actor::Operator | Actor::Anonymous => ("invité", None, false),
    };
    let notices = notice_lines(&state, &signed_in.token).await;
    let care_records_unlocked = practice_id.is_some()
        && state
            .services
            .care_records_unlocked(&signed_in.token)
            .await
            .unwrap_or(false);
    render(
        &SpacePage {
            role,
            sees_backups: holder || matches!(signed_in.caller.actor, Actor::PlatformAdmin(_)),
            practice_id,
            holder,
            notices,
            care_records_unlocked,
            blur_seconds,
            lock_seconds,
        },
        StatusCode::OK,
    )
}

/// POST /messages/lus: the notices are dismissed; back to "Mon espace".
pub async fn dismiss_notices(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    match state.services.dismiss_notices(&signed_in.token).await {
        Ok(()) => Redirect::to("/espace").into_response(),
        Err(error) => crate::pages::message_page(
            ApiError::from(error).status,
            "Messages indisponibles",
            "Réessayez dans un instant.",
        ),
    }
}

/// The account's unread notices, dated, for a page (none if they cannot be read).
pub(crate) async fn notice_lines(state: &AppState, token: &str) -> Vec<String> {
    state
        .services
        .my_notices(token)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(at, message)| format!("{} — {message}", at.to_french_text()))
        .collect()
}

pub async fn sessions(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let (blur_seconds, lock_seconds) = idle_seconds(&state);
    match state.services.my_sessions(&signed_in.token).await {
        Ok(list) => {
            let sessions = list
                .into_iter()
                .map(|session| SessionRow {
                    id: session.id.to_string(),
                    created_at: session.created_at.to_french_text(),
                    last_seen_at: session.last_seen_at.to_french_text(),
                    state: if session.current {
                        "cette session"
                    } else if session.revoked {
                        "révoquée"
                    } else {
                        "ouverte"
                    },
                    revocable: !session.current && !session.revoked,
                })
                .collect();
            render(
                &SessionsPage {
                    sessions,
                    blur_seconds,
                    lock_seconds,
                },
                StatusCode::OK,
            )
        }
        Err(error) => crate::pages::message_page(
            ApiError::from(error).status,
            "Sessions indisponibles",
            "Réessayez dans un instant.",
        ),
    }
}

pub async fn revoke_session(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let Ok(session_id) = id.parse() else {
        return crate::pages::message_page(
            StatusCode::BAD_REQUEST,
            "Session inconnue",
            "Cette session n'existe pas.",
        );
    };
    match state
        .services
        .revoke_my_session(&signed_in.caller, &signed_in.token, session_id)
        .await
    {
        Ok(()) => Redirect::to("/sessions").into_response(),
        Err(error) => crate::pages::message_page(
            ApiError::from(error).status,
            "Révocation impossible",
            "Cette session n'a pas pu être révoquée.",
        ),
    }
}

pub async fn logout(State(state): State<AppState>, context: FlowContext) -> Response {
    if let Some(token) = context.token {
        let _ = state.services.logout(&context.caller, &token).await;
    }
    redirect_with_cookie("/connexion", clear_session_cookie())
}

fn password_change_page(expired: bool) -> FormPage {
    let mut page = FormPage::new(
        "Changer de mot de passe",
        "/mot-de-passe",
        vec![
            field(
                "current_password",
                "Mot de passe actuel",
                "password",
                "current-password",
            ),
            field(
                "new_password",
                "Nouveau mot de passe",
                "password",
                "new-password",
            ),
        ],
        "Changer",
    );
    page.intro = "Vos autres sessions seront fermées. Au moins 12 caractères avec majuscule, minuscule, chiffre et caractère spécial.".into();
    if expired {
        page.intro = format!(
            "Votre mot de passe a atteint sa durée de validité : choisissez-en un nouveau pour continuer. {}",
            page.intro
        );
        page.footer_link = "";
    } else {
        page.footer_link = "/espace";
        page.footer_text = "Retour à mon espace";
    }
    page
}

pub async fn password_change_form(caller: PasswordPageCaller) -> Response {
    render(&password_change_page(caller.expired), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct PasswordChangeForm {
    current_password: String,
    new_password: String,
}

pub async fn password_change_submit(
    State(state): State<AppState>,
    signed_in: PasswordPageCaller,
    Form(form): Form<PasswordChangeForm>,
) -> Response {
    match state
        .services
        .change_password(
            &signed_in.caller,
            &signed_in.token,
            &form.current_password,
            &form.new_password,
        )
        .await
    {
        Ok(()) => crate::pages::message_page(
            StatusCode::OK,
            "Mot de passe changé",
            "Votre mot de passe est changé ; vos autres sessions sont fermées.",
        ),
        Err(error) => with_error(password_change_page(signed_in.expired), &error),
    }
}

#[derive(Deserialize)]
pub struct UnlockForm {
    password: String,
}

#[derive(Deserialize)]
pub struct BackTo {
    #[serde(default)]
    retour: Option<String>,
}

pub async fn unlock(
    State(state): State<AppState>,
    context: FlowContext,
    axum::extract::Query(back): axum::extract::Query<BackTo>,
    Form(form): Form<UnlockForm>,
) -> Response {
    // Only a local path: never an open redirect.
    let target = back
        .retour
        .filter(|path| path.starts_with('/') && !path.starts_with("//") && !path.contains('\\'))
        .unwrap_or_else(|| "/espace".into());
    let Some(token) = context.token else {
        return Redirect::to("/connexion").into_response();
    };
    match state
        .services
        .unlock_session(&context.caller, &token, &form.password)
        .await
    {
        Ok(()) => Redirect::to(&target).into_response(),
        Err(error) => lock_screen(&target, &error.to_string()),
    }
}
