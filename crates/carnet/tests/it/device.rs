//! Device certificates end to end (ADR 0008): the real server on its TLS listener, the
//! real `carnet device enroll` and `fetch`, and real TLS handshakes with the issued
//! certificate (approved: served; blocked: refused), a certificate from elsewhere, and
//! none at all (a browser).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carnet_crypto::TotpSecret;
use serde_json::{Value, json};

use crate::support::{Instance, stderr_of, stdout_of};

const LOGIN: &str = "anne.martin@example.fr";
const PASSWORD: &str = "Tilleul-Marée-42-Orage!";

/// A client with its cookies kept by hand (`__Host-` cookies over a loopback address).
struct Client {
    http: reqwest::Client,
    url: String,
    cookies: Vec<(String, String)>,
}

impl Client {
    fn new(url: &str, server_ca: &[u8], identity: Option<reqwest::Identity>) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .add_root_certificate(reqwest::Certificate::from_pem(server_ca).expect("PEM"));
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        Self {
            http: builder.build().expect("client"),
            url: url.to_owned(),
            cookies: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value, Vec<String>), reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header("cookie", header.join("; "));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let set: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().expect("ASCII").to_owned())
            .collect();
        for cookie in &set {
            let pair = cookie.split(';').next().expect("pair");
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(known, _)| known != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body, set))
    }

    async fn post(&mut self, path: &str, body: Value) -> (u16, Value, Vec<String>) {
        self.send(reqwest::Method::POST, path, Some(body))
            .await
            .expect("POST")
    }

    async fn get(&mut self, path: &str) -> (u16, Value) {
        let (status, body, _) = self
            .send(reqwest::Method::GET, path, None)
            .await
            .expect("GET");
        (status, body)
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the real server runs on the real clock: its TOTP codes come from real time"
)]
fn totp_now(secret: &TotpSecret) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    secret.code_at(now)
}

fn holder_with_code(instance: &Instance) -> String {
    let created = instance.run(&[
        "practice",
        "create",
        "--name",
        "Cabinet du Port",
        "--address",
        "1 quai Est, 17000 La Rochelle",
        "--profession",
        "nurse",
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    let practice = stdout_of(&created).trim().to_owned();
    let added = instance.run(&[
        "member",
        "add-holder",
        "--practice",
        &practice,
        "--name",
        "Anne Martin",
        "--phone",
        "0612345678",
        "--professional-id",
        "10000005479",
    ]);
    assert!(added.status.success(), "{}", stderr_of(&added));
    stdout_of(&added)
        .lines()
        .find_map(|line| line.strip_prefix("code d'activation : "))
        .and_then(|rest| rest.split(' ').next())
        .expect("activation code")
        .to_owned()
}

/// Runs `carnet device …` against the server.
fn device_command(instance: &Instance, args: &[&str], second_factor: &str) -> std::process::Output {
    instance
        .command()
        .args(args)
        .env("CARNET_PASSWORD", PASSWORD)
        .env("CARNET_SECOND_FACTOR", second_factor)
        .output()
        .expect("run carnet device")
}

fn identity_of(dir: &Path) -> reqwest::Identity {
    let mut pem = std::fs::read(dir.join("device.key")).expect("key");
    pem.extend(std::fs::read(dir.join("device.crt")).expect("certificate"));
    reqwest::Identity::from_pem(&pem).expect("identity")
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one story on purpose: enrolment, approval, mutual TLS, block"
)]
async fn an_enrolled_device_authenticates_by_certificate_until_it_is_blocked() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let code = holder_with_code(&instance);
    let server = instance.serve_with(|command| {
        command.env("CARNET_TLS", "self-signed");
    });
    let server_ca_path = instance.data_dir().join("tls").join("self-signed.crt");
    let server_ca = std::fs::read(&server_ca_path).expect("server certificate");

    // The holder's browser: activation (its device approved), TOTP, recovery codes.
    let mut browser = Client::new(&server.url, &server_ca, None);
    let (status, _, _) = browser
        .post(
            "/api/v1/auth/activate",
            json!({"code": code, "login": LOGIN, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, enrolment, _) = browser.post("/api/v1/auth/totp/enrolment", json!({})).await;
    let secret =
        TotpSecret::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    let (status, done, _) = browser
        .post("/api/v1/auth/totp", json!({"code": totp_now(&secret)}))
        .await;
    assert_eq!(status, 200, "{done}");
    let recovery: Vec<String> = done["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|code| code.as_str().expect("text").to_owned())
        .collect();

    // The command line enrols a new device: it waits for approval.
    let dir = instance.dir.path().join("client");
    let dir_text = dir.to_str().expect("UTF-8 path");
    let enrolled = device_command(
        &instance,
        &[
            "device",
            "enroll",
            "--server",
            &server.url,
            "--login",
            LOGIN,
            "--name",
            "Script de facturation",
            "--dir",
            dir_text,
            "--server-ca",
            server_ca_path.to_str().expect("UTF-8"),
        ],
        &recovery[0],
    );
    assert!(enrolled.status.success(), "{}", stderr_of(&enrolled));
    assert_eq!(crate::support::mode_of(&dir.join("device.key")), 0o600);
    let pending = device_command(&instance, &["device", "fetch", "--dir", dir_text], "");
    assert_eq!(pending.status.code(), Some(75), "{}", stderr_of(&pending));
    assert!(!dir.join("device.crt").exists());

    // The holder approves it (their own device: right after a recovery-code sign-in).
    browser
        .cookies
        .retain(|(name, _)| name != "__Host-carnet-session");
    let (status, _, _) = browser
        .post(
            "/api/v1/auth/login",
            json!({"login": LOGIN, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = browser
        .post("/api/v1/auth/recovery", json!({"code": recovery[1]}))
        .await;
    assert_eq!(status, 204);
    let (status, devices) = browser.get("/api/v1/auth/devices").await;
    assert_eq!(status, 200);
    let client_device = devices
        .as_array()
        .expect("devices")
        .iter()
        .find(|device| device["name"] == "Script de facturation")
        .expect("the enrolled device, named")
        .clone();
    assert_eq!(client_device["state"], "pending");
    assert_eq!(client_device["browser"], "Client Carnet (certificat)");
    let decision = format!(
        "/api/v1/auth/devices/{}/{}/decision",
        client_device["device_id"].as_str().expect("id"),
        client_device["account_id"].as_str().expect("id")
    );
    let (status, body, _) = browser
        .post(&decision, json!({"decision": "approve"}))
        .await;
    assert_eq!(status, 204, "{body}");

    let fetched = device_command(&instance, &["device", "fetch", "--dir", dir_text], "");
    assert!(fetched.status.success(), "{}", stderr_of(&fetched));
    assert_eq!(crate::support::mode_of(&dir.join("device.crt")), 0o600);

    // Mutual TLS: the device is known by its certificate (no device cookie is made),
    // and its sessions are those of an approved device.
    let mut script = Client::new(&server.url, &server_ca, Some(identity_of(&dir)));
    let (status, _, set) = script
        .post(
            "/api/v1/auth/login",
            json!({"login": LOGIN, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        set.iter()
            .all(|cookie| !cookie.starts_with("__Host-carnet-device=")),
        "no new device for a certified connection: {set:?}"
    );
    let (status, _, _) = script
        .post("/api/v1/auth/recovery", json!({"code": recovery[2]}))
        .await;
    assert_eq!(status, 204);
    let (status, mine) = script.get("/api/v1/auth/devices").await;
    assert_eq!(status, 200);
    let current = mine
        .as_array()
        .expect("devices")
        .iter()
        .find(|device| device["current"] == true)
        .expect("the session's device")
        .clone();
    assert_eq!(current["device_id"], client_device["device_id"]);
    assert_eq!(current["state"], "approved");
    // That session is bound to the certificate: its cookie is worth nothing on a
    // connection without it, and a certified connection carries no other device's session.
    let mut thief = Client::new(&server.url, &server_ca, None);
    thief.cookies.clone_from(&script.cookies);
    assert_eq!(thief.get("/api/v1/auth/devices").await.0, 401);
    let mut mixed = Client::new(&server.url, &server_ca, Some(identity_of(&dir)));
    mixed.cookies.clone_from(&browser.cookies);
    assert_eq!(mixed.get("/api/v1/auth/devices").await.0, 401);
    assert_eq!(browser.get("/api/v1/auth/devices").await.0, 200);

    // A certificate the device authority never issued fails the handshake; no
    // certificate at all (a browser) is served.
    let foreign = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).expect("cert");
    let mut foreign_pem = foreign.signing_key.serialize_pem().into_bytes();
    foreign_pem.extend(foreign.cert.pem().into_bytes());
    let mut stranger = Client::new(
        &server.url,
        &server_ca,
        Some(reqwest::Identity::from_pem(&foreign_pem).expect("identity")),
    );
    assert!(
        stranger
            .send(reqwest::Method::GET, "/healthz", None)
            .await
            .is_err(),
        "a foreign certificate is refused"
    );
    let mut anonymous = Client::new(&server.url, &server_ca, None);
    assert_eq!(anonymous.get("/healthz").await.0, 200);

    // The holder blocks the device: the certificate is refused from the next handshake.
    let (status, body, _) = browser.post(&decision, json!({"decision": "block"})).await;
    assert_eq!(status, 204, "{body}");
    let mut again = Client::new(&server.url, &server_ca, Some(identity_of(&dir)));
    assert!(
        again
            .send(reqwest::Method::GET, "/healthz", None)
            .await
            .is_err(),
        "a blocked device's certificate is refused at the handshake"
    );
    let revoked = device_command(&instance, &["device", "fetch", "--dir", dir_text], "");
    assert_eq!(revoked.status.code(), Some(77), "{}", stderr_of(&revoked));
    drop(server);

    let verified = instance.run(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout_of(&verified));
}
