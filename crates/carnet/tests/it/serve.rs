use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use crate::support::{Instance, assert_refused, http_client, mode_of, stderr_of, stdout_of};

#[tokio::test]
async fn first_start_creates_a_private_instance_and_serves_the_home_page() {
    let instance = Instance::new();
    let server = instance.serve();
    assert!(
        server
            .startup_output
            .iter()
            .any(|line| line.contains("Nouvelle instance")),
        "{:?}",
        server.startup_output
    );
    let data = instance.data_dir();
    assert_eq!(mode_of(&data), 0o700);
    assert_eq!(mode_of(&data.join("instance.key")), 0o600);
    assert_eq!(mode_of(&data.join("carnet.sqlite3")), 0o600);
    assert_eq!(
        fs::read_to_string(data.join("instance.key"))
            .expect("key")
            .trim()
            .len(),
        64
    );

    let client = http_client();
    let home = client
        .get(format!("{}/", server.url))
        .send()
        .await
        .expect("GET /");
    assert_eq!(home.status(), 200);
    assert!(
        home.headers()["content-security-policy"]
            .to_str()
            .expect("ASCII")
            .contains("script-src 'self'")
    );
    assert!(
        home.text()
            .await
            .expect("body")
            .contains("Bienvenue sur Carnet")
    );
    let ready = client
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status(), 200);
    let openapi = client
        .get(format!("{}/api/openapi.json", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(openapi.status(), 200);

    let (code, rest) = server.terminate();
    assert_eq!(code, Some(0), "graceful shutdown exits 0");
    assert!(
        rest.iter().any(|line| line.contains("Carnet est arrêté")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_second_start_reuses_the_key_and_the_database() {
    let instance = Instance::new();
    drop(instance.serve());
    let key_path = instance.data_dir().join("instance.key");
    let key = fs::read(&key_path).expect("key");
    let practice = instance.run(&[
        "practice",
        "create",
        "--name",
        "Cabinet des Tilleuls",
        "--address",
        "3 rue des Lilas, 69003 Lyon",
        "--profession",
        "nurse",
    ]);
    assert!(
        practice.status.success(),
        "{}",
        crate::support::stderr_of(&practice)
    );
    let server = instance.serve();
    assert!(
        !server
            .startup_output
            .iter()
            .any(|line| line.contains("Nouvelle instance"))
    );
    assert_eq!(
        fs::read(&key_path).expect("key"),
        key,
        "the key is never replaced"
    );
    drop(server);
    let listed = instance.run(&["practice", "list"]);
    assert!(crate::support::stdout_of(&listed).contains("Cabinet des Tilleuls"));
}

#[test]
fn refuses_to_start_when_the_database_exists_but_the_key_file_is_missing() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    fs::remove_file(instance.data_dir().join("instance.key")).expect("remove key");
    let output = instance.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_refused(&output, "fichier de clé de l'instance");
    assert!(
        !instance.data_dir().join("instance.key").exists(),
        "no new key is made up"
    );
}

#[test]
fn refuses_to_start_when_the_key_file_does_not_match_the_database() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let key_path = instance.data_dir().join("instance.key");
    fs::write(&key_path, format!("{}\n", "ab".repeat(32))).expect("replace key");
    let output = instance.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_refused(&output, "ne correspond pas à cette base de données");
}

#[test]
fn refuses_to_start_when_the_key_file_is_readable_by_others() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let key_path = instance.data_dir().join("instance.key");
    for mode in [0o640, 0o604, 0o660] {
        fs::set_permissions(&key_path, fs::Permissions::from_mode(mode)).expect("chmod");
        let output = instance.run(&["serve", "--listen", "127.0.0.1:0"]);
        assert_refused(&output, "accessible à d'autres utilisateurs");
    }
}

#[test]
fn refuses_to_listen_off_loopback_without_tls_or_a_proxy() {
    let instance = Instance::new();
    let output = instance.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_refused(&output, "n'est pas locale");
    assert!(
        !instance.data_dir().exists(),
        "nothing created before the refusal"
    );
}

#[test]
fn refuses_an_unknown_configuration_key_or_an_out_of_range_value() {
    let instance = Instance::new();
    let config = instance.dir.path().join("carnet.toml");
    fs::write(&config, "idle_lock_minute = 10\n").expect("write");
    let output = instance.run(&["--config", config.to_str().expect("UTF-8"), "serve"]);
    assert_refused(&output, "idle_lock_minute");
    fs::write(&config, "idle_lock_minutes = 45\n").expect("write");
    let output = instance.run(&["--config", config.to_str().expect("UTF-8"), "serve"]);
    assert_refused(
        &output,
        "idle_lock_minutes = 45 est hors des limites (1 à 30)",
    );
    let output = instance
        .command()
        .args(["serve"])
        .env("CARNET_IDLE_LOCK_MINUTES", "31")
        .output()
        .expect("run");
    assert_refused(&output, "idle_lock_minutes = 31");
}

#[tokio::test]
async fn serves_https_with_a_self_signed_certificate_kept_in_the_data_directory() {
    let instance = Instance::new();
    let server = instance.serve_with(|command| {
        command.env("CARNET_TLS", "self-signed");
    });
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let tls_dir = instance.data_dir().join("tls");
    assert_eq!(mode_of(&tls_dir.join("self-signed.key")), 0o600);
    let certificate = fs::read(tls_dir.join("self-signed.crt")).expect("certificate");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&certificate).expect("PEM"))
        .build()
        .expect("client");
    let response = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("HTTPS GET");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let plain = http_client()
        .get(server.url.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err(), "no plain HTTP on the TLS listener");
    drop(server);
    let again = instance.serve_with(|command| {
        command.env("CARNET_TLS", "self-signed");
    });
    assert_eq!(
        fs::read(tls_dir.join("self-signed.crt")).expect("certificate"),
        certificate,
        "the certificate is kept across restarts"
    );
    drop(again);
}

#[tokio::test]
async fn a_new_instance_prints_a_setup_link_that_creates_the_first_administrator() {
    let instance = Instance::new();
    let bootstrap = instance.run(&["admin", "bootstrap"]);
    assert!(bootstrap.status.success(), "{}", stderr_of(&bootstrap));
    let first = stdout_of(&bootstrap).trim().to_owned();
    assert!(
        first.starts_with("http://localhost:8080/installation?jeton="),
        "{first}"
    );
    let again = stdout_of(&instance.run(&["admin", "bootstrap"]))
        .trim()
        .to_owned();
    assert_ne!(
        first, again,
        "each link is new (and retires the unused one)"
    );

    let server = instance.serve();
    let port = server.url.rsplit(':').next().expect("port").to_owned();
    let link = std::iter::from_fn(|| {
        server
            .lines
            .recv_timeout(std::time::Duration::from_secs(10))
            .ok()
    })
    .find(|line| line.contains("/installation?jeton="))
    .expect("the setup link is printed");
    assert!(
        link.starts_with(&format!("http://localhost:{port}/installation?jeton=")),
        "{link}"
    );
    let token = link.split("jeton=").nth(1).expect("token").to_owned();
    let client = http_client();
    let page = client
        .get(format!("{}/installation?jeton={token}", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
    let stale = client
        .post(format!("{}/api/v1/setup", server.url))
        .json(
            &serde_json::json!({"link": again.split("jeton=").nth(1), "name": "Claire Dubois",
            "login": "claire@example.fr", "password": "Tilleul-Marée-42-Orage!"}),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(stale.status(), 401, "the start retired the earlier link");
    let created = client
        .post(format!("{}/api/v1/setup", server.url))
        .json(&serde_json::json!({"link": token, "name": "Claire Dubois",
            "login": "claire@example.fr", "password": "Tilleul-Marée-42-Orage!"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    assert!(
        created.headers()["set-cookie"]
            .to_str()
            .expect("ASCII")
            .starts_with("__Host-carnet-session=")
    );
    assert_refused(
        &instance.run(&["admin", "bootstrap"]),
        "un administrateur de la plateforme existe déjà",
    );
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}
