//! A per-address limit on sign-in attempts, on top of the per-account counting the
//! service does in the database: one address cannot spray passwords over many accounts.
//! In memory, per node (a first line; the database counters are what every node sees).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState, ClientAddress};

/// Sign-in attempts allowed per address and minute.
pub const ATTEMPTS_PER_MINUTE: u32 = 30;
const WINDOW_MILLIS: i64 = 60_000;
/// Addresses remembered before old windows are forgotten.
const MAX_ADDRESSES: usize = 100_000;

/// The routes that check a secret (password, code) on behalf of someone not yet signed in.
const GUARDED: [&str; 13] = [
    "/api/v1/auth/passkeys/sign-in/finish",
    "/api/v1/setup",
    "/installation",
    "/api/v1/auth/login",
    "/api/v1/auth/activate",
    "/api/v1/auth/totp",
    "/api/v1/auth/recovery",
    "/api/v1/auth/unlock",
    "/connexion",
    "/activation",
    "/connexion/second-facteur",
    "/connexion/secours",
    "/deverrouiller",
];

/// Fixed one-minute windows per client address.
#[derive(Debug, Default)]
pub struct AddressLimiter {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl AddressLimiter {
    /// Counts an attempt from `address` at `now_millis`; false when over the limit.
    pub fn allow(&self, address: IpAddr, now_millis: i64) -> bool {
        let Ok(mut windows) = self.windows.lock() else {
            return false; // A poisoned lock fails closed.
        };
        if windows.len() >= MAX_ADDRESSES {
            windows.retain(|_, (start, _)| now_millis - *start < WINDOW_MILLIS);
        }
        let entry = windows.entry(address).or_insert((now_millis, 0));
        if now_millis - entry.0 >= WINDOW_MILLIS {
            *entry = (now_millis, 0);
        }
        entry.1 += 1;
        entry.1 <= ATTEMPTS_PER_MINUTE
    }
}

pub async fn limit_sign_in_attempts(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST && GUARDED.contains(&request.uri().path()) {
        let address = request
            .extensions()
            .get::<ClientAddress>()
            .map(|peer| peer.resolve(request.headers(), &state.settings.trusted_proxies));
        if let Some(address) = address
            && !state
                .limiter
                .allow(address, state.services.now().unix_millis())
        {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Trop de tentatives depuis cette adresse : réessayez dans une minute.",
            )
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn an_address_gets_its_quota_per_minute_and_others_are_independent() {
        let limiter = AddressLimiter::default();
        let one = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let two = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        for _ in 0..ATTEMPTS_PER_MINUTE {
            assert!(limiter.allow(one, 0));
        }
        assert!(!limiter.allow(one, 59_999));
        assert!(
            limiter.allow(two, 59_999),
            "another address is not affected"
        );
        assert!(limiter.allow(one, 60_000), "a new window");
    }
}
