//! `carnet device …`: the client side of device certificates (ADR 0008). `enroll` signs
//! in to a Carnet server as a new device, makes a key and a signing request, and sends
//! the request; once a holder approved the device, `fetch` picks the certificate up.
//! Everything is kept in one directory, readable by its owner only.

use std::fs;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::exit::CliError;
use crate::output::say;

#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Registers this machine as a device of your account: signs in (password, then a
    /// TOTP or recovery code), makes a key and sends its signing request. A holder of
    /// the practice then approves the device in "Appareils du cabinet".
    Enroll {
        /// The Carnet server, e.g. https://carnet.example.fr
        #[arg(long)]
        server: String,
        /// Your login.
        #[arg(long)]
        login: String,
        /// The name the holders will see, e.g. "Script de facturation".
        #[arg(long, default_value = "Client en ligne de commande")]
        name: String,
        /// Where the key, the device secret and the certificate are kept.
        #[arg(long, default_value = "carnet-device")]
        dir: PathBuf,
        /// The server's certificate or authority (PEM), if the system does not trust it
        /// (a self-signed server).
        #[arg(long)]
        server_ca: Option<PathBuf>,
    },
    /// Picks up the device's certificate once a holder approved the device (exit 75
    /// while it still waits).
    Fetch {
        #[arg(long, default_value = "carnet-device")]
        dir: PathBuf,
    },
}

/// Exit code while the device waits for approval (EX_TEMPFAIL): try again later.
const EXIT_PENDING: u8 = 75;
/// Exit code when the device was blocked (EX_NOPERM).
const EXIT_REVOKED: u8 = 77;

const KEY_FILE: &str = "device.key";
const SECRET_FILE: &str = "device.secret";
const SERVER_FILE: &str = "server.url";
const SERVER_CA_FILE: &str = "server-ca.pem";
const CERTIFICATE_FILE: &str = "device.crt";
const AUTHORITY_FILE: &str = "authority.crt";
const DEVICE_COOKIE: &str = "__Host-carnet-device";
const SESSION_COOKIE: &str = "__Host-carnet-session";

pub fn run(command: &DeviceCommand) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::failure(format!("démarrage impossible ({error})")))?;
    match command {
        DeviceCommand::Enroll {
            server,
            login,
            name,
            dir,
            server_ca,
        } => runtime.block_on(enroll(server, login, name, dir, server_ca.as_deref())),
        DeviceCommand::Fetch { dir } => runtime.block_on(fetch(dir)),
    }
}

async fn enroll(
    server: &str,
    login: &str,
    name: &str,
    dir: &Path,
    server_ca: Option<&Path>,
) -> Result<(), CliError> {
    let server = server.trim_end_matches('/');
    if !server.starts_with("https://") {
        return Err(CliError::refusal(
            "le serveur doit être en https:// (les certificats d'appareil passent par TLS)",
        ));
    }
    if dir.join(KEY_FILE).exists() {
        return Err(CliError::refusal(format!(
            "{} contient déjà un appareil : choisissez un autre dossier (--dir)",
            dir.display()
        )));
    }
    let server_ca_pem = server_ca
        .map(|path| {
            fs::read(path).map_err(|error| {
                CliError::refusal(format!("{} illisible ({error})", path.display()))
            })
        })
        .transpose()?;
    let client = Client::new(server, server_ca_pem.as_deref())?;
    let password = secret_input("CARNET_PASSWORD", "Mot de passe : ")?;
    let signed_in = client
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"login": login, "password": password}),
        )
        .await?;
    let session = signed_in.cookie(SESSION_COOKIE).ok_or_else(|| {
        CliError::failure("le serveur n'a pas ouvert de session (réponse inattendue)")
    })?;
    let device_secret = signed_in.cookie(DEVICE_COOKIE).ok_or_else(|| {
        CliError::failure("le serveur n'a pas créé d'appareil (réponse inattendue)")
    })?;
    let cookies = format!("{SESSION_COOKIE}={session}; {DEVICE_COOKIE}={device_secret}");
    let code = secret_input(
        "CARNET_SECOND_FACTOR",
        "Code de l'application d'authentification (ou code de secours) : ",
    )?;
    let code = code.trim();
    let second_factor = if code.len() == 6 && code.bytes().all(|byte| byte.is_ascii_digit()) {
        "/api/v1/auth/totp"
    } else {
        "/api/v1/auth/recovery"
    };
    client
        .post(second_factor, Some(&cookies), &json!({"code": code}))
        .await?;

    let (key_pem, request_pem) = carnet_crypto::new_device_key(name)
        .map_err(|error| CliError::failure(format!("clé impossible à créer ({error})")))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| {
            CliError::refusal(format!("impossible de créer {} ({error})", dir.display()))
        })?;
    write_private(&dir.join(KEY_FILE), key_pem.as_bytes())?;
    write_private(&dir.join(SECRET_FILE), device_secret.as_bytes())?;
    write_private(&dir.join(SERVER_FILE), server.as_bytes())?;
    if let Some(pem) = &server_ca_pem {
        write_private(&dir.join(SERVER_CA_FILE), pem)?;
    }
    client
        .post(
            "/api/v1/auth/device-certificate",
            Some(&cookies),
            &json!({"request": request_pem}),
        )
        .await?;
    // Name the device for the holders who will approve it.
    let devices = client.get("/api/v1/auth/devices", &cookies).await?;
    if let Some(current) = devices
        .body
        .as_array()
        .and_then(|all| all.iter().find(|device| device["current"] == true))
    {
        let path = format!(
            "/api/v1/auth/devices/{}/{}",
            current["device_id"].as_str().unwrap_or_default(),
            current["account_id"].as_str().unwrap_or_default()
        );
        client
            .patch(&path, &cookies, &json!({"name": name}))
            .await?;
    }
    client
        .post("/api/v1/auth/logout", Some(&cookies), &json!({}))
        .await?;
    say(&format!(
        "Appareil « {name} » enregistré ; clé dans {}.\nUn titulaire du cabinet doit maintenant \
         l'approuver (Appareils du cabinet). Ensuite : carnet device fetch --dir {}",
        dir.join(KEY_FILE).display(),
        dir.display()
    ));
    Ok(())
}

async fn fetch(dir: &Path) -> Result<(), CliError> {
    let read = |file: &str| {
        fs::read(dir.join(file)).map_err(|error| {
            CliError::refusal(format!(
                "{} illisible ({error}) : lancez d'abord carnet device enroll",
                dir.join(file).display()
            ))
        })
    };
    let server = String::from_utf8(read(SERVER_FILE)?)
        .map_err(|_| CliError::refusal("adresse du serveur illisible"))?;
    let secret = String::from_utf8(read(SECRET_FILE)?)
        .map_err(|_| CliError::refusal("secret d'appareil illisible"))?;
    let server_ca = read(SERVER_CA_FILE).ok();
    let client = Client::new(&server, server_ca.as_deref())?;
    let answer = client
        .get(
            "/api/v1/device-certificate",
            &format!("{DEVICE_COOKIE}={secret}"),
        )
        .await?;
    match answer.body["state"].as_str() {
        Some("issued") => {
            let certificate = answer.body["certificate"].as_str().unwrap_or_default();
            let authority = answer.body["authority"].as_str().unwrap_or_default();
            write_private(&dir.join(CERTIFICATE_FILE), certificate.as_bytes())?;
            write_private(&dir.join(AUTHORITY_FILE), authority.as_bytes())?;
            say(&format!(
                "Certificat d'appareil enregistré : {}",
                dir.join(CERTIFICATE_FILE).display()
            ));
            Ok(())
        }
        Some("pending") => Err(CliError {
            code: EXIT_PENDING,
            message: "l'appareil attend encore l'approbation d'un titulaire".into(),
        }),
        _ => Err(CliError {
            code: EXIT_REVOKED,
            message: "cet appareil a été bloqué : son certificat est révoqué".into(),
        }),
    }
}

/// A secret from the environment (scripts), or typed on the terminal without echo.
fn secret_input(variable: &str, prompt: &str) -> Result<String, CliError> {
    if let Ok(value) = std::env::var(variable) {
        return Ok(value);
    }
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    // The prompt goes to standard error, so standard output stays for results.
    let _ = write!(std::io::stderr().lock(), "{prompt}");
    let _ = std::io::stderr().flush();
    if terminal {
        let _ = Command::new("stty")
            .arg("-echo")
            .stdin(Stdio::inherit())
            .status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        let _ = Command::new("stty")
            .arg("echo")
            .stdin(Stdio::inherit())
            .status();
        let _ = writeln!(std::io::stderr().lock());
    }
    read.map_err(|error| CliError::failure(format!("saisie impossible ({error})")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn write_private(path: &Path, content: &[u8]) -> Result<(), CliError> {
    crate::tls::write_new_file(path, content, 0o600)
}

/// A small JSON client for the Carnet API (cookies handled by hand: two of them).
struct Client {
    http: reqwest::Client,
    server: String,
}

struct Answer {
    set_cookies: Vec<String>,
    body: Value,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies.iter().find_map(|set| {
            set.split(';')
                .next()
                .and_then(|pair| pair.split_once('='))
                .filter(|(key, value)| *key == name && !value.is_empty())
                .map(|(_, value)| value.to_owned())
        })
    }
}

impl Client {
    fn new(server: &str, server_ca: Option<&[u8]>) -> Result<Self, CliError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("carnet-cli/", env!("CARGO_PKG_VERSION")))
            .https_only(true);
        if let Some(pem) = server_ca {
            let certificate = reqwest::Certificate::from_pem(pem).map_err(|error| {
                CliError::refusal(format!("certificat du serveur illisible ({error})"))
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder
            .build()
            .map_err(|error| CliError::failure(format!("client HTTPS impossible ({error})")))?;
        Ok(Self {
            http,
            server: server.to_owned(),
        })
    }

    async fn post(
        &self,
        path: &str,
        cookies: Option<&str>,
        body: &Value,
    ) -> Result<Answer, CliError> {
        let mut request = self.http.post(format!("{}{path}", self.server)).json(body);
        if let Some(cookies) = cookies {
            request = request.header(reqwest::header::COOKIE, cookies);
        }
        answer(request.send().await).await
    }

    async fn patch(&self, path: &str, cookies: &str, body: &Value) -> Result<Answer, CliError> {
        let request = self
            .http
            .patch(format!("{}{path}", self.server))
            .header(reqwest::header::COOKIE, cookies)
            .json(body);
        answer(request.send().await).await
    }

    async fn get(&self, path: &str, cookies: &str) -> Result<Answer, CliError> {
        let request = self
            .http
            .get(format!("{}{path}", self.server))
            .header(reqwest::header::COOKIE, cookies);
        answer(request.send().await).await
    }
}

/// The answer, or the server's refusal in its own words.
async fn answer(sent: Result<reqwest::Response, reqwest::Error>) -> Result<Answer, CliError> {
    let response = sent.map_err(|error| {
        CliError::failure(format!("serveur injoignable ({})", error_chain(&error)))
    })?;
    let status = response.status();
    let set_cookies = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .map_or_else(|| format!("réponse {status}"), str::to_owned);
        return Err(CliError::refusal(format!("le serveur refuse : {message}")));
    }
    Ok(Answer { set_cookies, body })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(" : ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
