//! Documents over HTTP (ADR 0010): uploaded as raw bytes, typed from their content,
//! encrypted chunk by chunk into the blob directory, versioned, downloaded whole and
//! verified (a flipped bit or a cut-off file is refused and audited), audited on every
//! download; nothing of them in clear in the blob directory or the database.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use carnet_http::HttpSettings;
use serde_json::{Value, json};

use crate::auth::request;
use crate::patients::{call, unlock};
use crate::support::{S3Server, TestApp, send, test_app, test_app_with_blobs};

/// A validated holder with the PIN unlocked and one patient: (cookie, documents URI).
async fn setup(test: &TestApp) -> (String, String, String) {
    let (practice, holder, patient_id) = crate::patients::holder_with_patient(test).await;
    let uri = format!("/api/v1/practices/{practice}/patients/{patient_id}/documents");
    (holder, uri, practice)
}

pub async fn upload(
    test: &TestApp,
    cookie: &str,
    uri: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    upload_body(test, cookie, uri, name, Body::from(bytes)).await
}

async fn upload_body(
    test: &TestApp,
    cookie: &str,
    uri: &str,
    name: &str,
    body: Body,
) -> (StatusCode, Value) {
    let (mut parts, _) =
        request("POST", &format!("{uri}?name={name}"), Some(cookie), None).into_parts();
    parts
        .headers
        .insert("content-type", "application/pdf".parse().expect("header"));
    let (response, body) = send(&test.anonymous(), Request::from_parts(parts, body)).await;
    (
        response.status(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn download(test: &TestApp, cookie: &str, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let (response, body) = send(&test.anonymous(), request("GET", uri, Some(cookie), None)).await;
    let media_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    (response.status(), media_type, body)
}

/// A PDF of `size` bytes carrying `marker` (several encrypted chunks when large).
pub fn pdf(marker: &str, size: usize) -> Vec<u8> {
    let mut bytes = format!("%PDF-1.7\n% {marker}\n").into_bytes();
    let mut state: u32 = 7;
    while bytes.len() < size {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((state >> 16) as u8);
    }
    bytes
}

fn blob_files(test: &TestApp) -> Vec<std::path::PathBuf> {
    files_below(&test.dir.path().join("blobs"))
}

/// Every file below `dir`, at any depth (none if it does not exist).
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_below(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn documents_are_typed_by_content_versioned_and_come_back_identical() {
    let test = test_app(HttpSettings::default()).await;
    let blobs = test.dir.path().join("blobs");
    round_trip(&test, &blobs).await;
}

/// A body arrives in pieces of any size: chunks are cut at the same places whatever the
/// pieces (64 KiB of plaintext each, the last one possibly shorter, never empty unless the
/// file is), and the file comes back byte for byte.
#[tokio::test]
async fn a_document_sent_in_pieces_of_any_size_comes_back_identical() {
    const CHUNK: usize = 64 * 1024;
    const SEALED_OVERHEAD: usize = 1 + 4 + 12 + 16;
    let test = test_app(HttpSettings::default()).await;
    let (holder, uri, _) = setup(&test).await;
    for (size, piece) in [
        (5, 1),
        (CHUNK - 1, 1000),
        (CHUNK, CHUNK),
        (CHUNK + 1, CHUNK),
        (2 * CHUNK, 7),
        (2 * CHUNK, 3 * CHUNK),
        (1_300_000, 300_001),
        (1_300_000, CHUNK + 3),
    ] {
        let mut original = pdf("Wqzmorceaux", size);
        original.truncate(size);
        let before = blob_files(&test);
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> = original
            .chunks(piece)
            .map(|part| Ok(part.to_vec()))
            .collect();
        let body = Body::from_stream(futures_util::stream::iter(pieces));
        let (status, created) = upload_body(&test, &holder, &uri, "morceaux.pdf", body).await;
        assert_eq!(status, StatusCode::CREATED, "{size} in {piece}: {created}");
        assert_eq!(created["size"], size);
        let blob: Vec<_> = blob_files(&test)
            .into_iter()
            .filter(|file| !before.contains(file))
            .collect();
        let [blob] = blob.as_slice() else {
            panic!("one new blob for {size} in {piece}: {blob:?}");
        };
        let chunks = size.div_ceil(CHUNK);
        let stored = std::fs::metadata(blob).expect("blob").len();
        assert_eq!(
            stored,
            (size + chunks * SEALED_OVERHEAD) as u64,
            "{size} bytes in pieces of {piece}: {chunks} sealed chunks"
        );
        let id = created["id"].as_str().expect("id");
        let (status, media_type, bytes) =
            download(&test, &holder, &format!("{uri}/{id}/content")).await;
        assert_eq!(status, StatusCode::OK, "{size} in {piece}");
        assert_eq!(media_type, "application/pdf");
        assert!(
            bytes == original,
            "{size} bytes in pieces of {piece}, byte for byte"
        );
    }
}

/// The same, with the documents in an S3-compatible store (in process, signatures
/// checked): what reaches the store is ciphertext only.
#[tokio::test]
async fn documents_in_an_s3_store_come_back_identical_and_the_store_sees_no_clear_text() {
    let s3 = S3Server::start("cabinet/documents").await;
    let blobs = carnet_service::Blobs::s3(&s3.settings).expect("S3 store");
    let test = test_app_with_blobs(HttpSettings::default(), blobs).await;
    round_trip(&test, s3.dir.path()).await;
    assert_eq!(
        files_below(&s3.objects_dir()).len(),
        2,
        "two versions, two objects, under the configured prefix"
    );
}

/// A refused upload leaves nothing in the S3 store; wrong credentials are refused by the
/// store (signatures are checked) and the upload fails without keeping anything.
#[tokio::test]
async fn s3_refusals_and_wrong_credentials_keep_nothing() {
    let s3 = S3Server::start("cabinet/documents").await;
    let test = test_app_with_blobs(
        HttpSettings::default(),
        carnet_service::Blobs::s3(&s3.settings).expect("S3 store"),
    )
    .await;
    let (holder, uri, _) = setup(&test).await;
    let (status, _) = upload(&test, &holder, &uri, "page.pdf", b"<html>".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let big = pdf("gros", 9 * 1024 * 1024);
    let (status, body) = upload(&test, &holder, &uri, "gros.pdf", big.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}: more than one part");
    assert_eq!(files_below(&s3.objects_dir()).len(), 1);
    let content = format!("{uri}/{}/content", body["id"].as_str().expect("id"));
    let (status, _, bytes) = download(&test, &holder, &content).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == big, "a multipart object comes back byte for byte");

    let wrong = carnet_service::S3Settings {
        secret_access_key: "not-the-secret-0123456789".into(),
        ..s3.settings.clone()
    };
    let mut test = test;
    test.state.services = (*test.state.services)
        .clone()
        .with_blobs(carnet_service::Blobs::s3(&wrong).expect("S3 store"))
        .into();
    let (status, body) = upload(&test, &holder, &uri, "refus.pdf", pdf("r", 1000)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        files_below(&s3.objects_dir()).len(),
        1,
        "nothing more stored"
    );
    let (_, listed) = call(&test, "GET", &uri, &holder, None).await;
    assert_eq!(listed.as_array().expect("list").len(), 1);
}

/// Uploads, versions and downloads a document; then scans the database and every file
/// below `blob_root` for the clear text.
async fn round_trip(test: &TestApp, blob_root: &std::path::Path) {
    let (holder, uri, _) = setup(test).await;
    let original = pdf("Wqzcanari-bilan", 200_000);
    let (status, first) = upload(test, &holder, &uri, "bilan-sanguin.pdf", original.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["media_type"], "application/pdf");
    assert_eq!(first["size"], 200_000);
    assert_eq!(first["version"], 1);
    let document = format!("{uri}/{}", first["id"].as_str().expect("id"));

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[7; 1000]);
    let (status, second) = upload(
        test,
        &holder,
        &format!("{document}/versions"),
        "bilan-sanguin.png",
        png.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["version"], 2);
    assert_eq!(
        second["media_type"], "image/png",
        "the type comes from the content, not the header"
    );

    let (status, listed) = call(test, "GET", &uri, &holder, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed.as_array().expect("list").len(),
        1,
        "one document, at its current version"
    );
    assert_eq!(listed[0]["version"], 2);
    let (_, versions) = call(test, "GET", &format!("{document}/versions"), &holder, None).await;
    assert_eq!(versions.as_array().expect("versions").len(), 2);

    let (status, media_type, bytes) = download(test, &holder, &format!("{document}/content")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(media_type, "image/png");
    assert_eq!(bytes, png);
    let (status, media_type, bytes) =
        download(test, &holder, &format!("{document}/content?version=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(media_type, "application/pdf");
    assert!(bytes == original, "version 1, byte for byte");

    // Nothing in clear: not the content, not the name, in the blobs or the database.
    let mut stored = crate::patients::database_bytes(test);
    let blob_paths = files_below(blob_root);
    assert!(!blob_paths.is_empty(), "the scan reads the stored blobs");
    for path in blob_paths {
        stored.extend(std::fs::read(path).expect("blob"));
    }
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|window| window == needle);
    for marker in [
        &b"Wqzcanari-bilan"[..],
        b"bilan-sanguin",
        b"%PDF-1.7",
        &original[5_000..5_032],
    ] {
        assert!(
            !contains(marker),
            "{} found in clear",
            String::from_utf8_lossy(marker)
        );
    }

    // Every download is in the audit trail.
    let practice = uri.split('/').nth(4).expect("practice");
    let (_, events) = call(
        test,
        "GET",
        &format!("/api/v1/practices/{practice}/audit-events?action=document_downloaded"),
        &holder,
        None,
    )
    .await;
    let count = events["events"]
        .as_array()
        .or_else(|| events.as_array())
        .map_or(0, Vec::len);
    assert_eq!(count, 2);
}

#[tokio::test]
async fn refused_uploads_keep_nothing() {
    let settings = HttpSettings {
        document_max_bytes: 100_000,
        ..HttpSettings::default()
    };
    let test = test_app(settings).await;
    let (holder, uri, practice) = setup(&test).await;
    for (bytes, expected, code) in [
        (
            b"<html>hello</html>".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            pdf("x", 150_000),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ] {
        let (status, body) = upload(&test, &holder, &uri, "fichier.pdf", bytes).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["error"]["code"], code);
    }
    assert!(
        blob_files(&test).is_empty(),
        "no blob left behind: {:?}",
        blob_files(&test)
    );
    let (_, listed) = call(&test, "GET", &uri, &holder, None).await;
    assert_eq!(listed, json!([]));

    // Staff: no documents at all.
    let staff = crate::pin::staff_member(&test, &holder, &practice).await;
    unlock(&test, &holder, &staff).await;
    let (status, _) = upload(&test, &staff, &uri, "fichier.pdf", pdf("x", 1000)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&test, "GET", &uri, &staff, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_altered_or_cut_off_blob_is_refused_and_audited() {
    let test = test_app(HttpSettings::default()).await;
    let (holder, uri, practice) = setup(&test).await;
    let (_, first) = upload(&test, &holder, &uri, "radio.pdf", pdf("m", 150_000)).await;
    let content = format!("{uri}/{}/content", first["id"].as_str().expect("id"));
    let [blob] = blob_files(&test).try_into().expect("one blob");
    let original = std::fs::read(&blob).expect("blob");

    let mut flipped = original.clone();
    flipped[70_000] ^= 0x10;
    std::fs::write(&blob, &flipped).expect("flip");
    let (status, _, body) = download(&test, &holder, &content).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(String::from_utf8_lossy(&body).contains("integrity_failure"));

    // Cut after the first full chunk: the rest is gone, and that is seen.
    std::fs::write(&blob, &original[..65_536 + 33]).expect("cut");
    let (status, _, _) = download(&test, &holder, &content).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    std::fs::write(&blob, &original).expect("restore");
    let (status, _, _) = download(&test, &holder, &content).await;
    assert_eq!(status, StatusCode::OK, "restored, it opens again");
    let (_, events) = call(
        &test,
        "GET",
        &format!("/api/v1/practices/{practice}/audit-events?action=integrity_failure"),
        &holder,
        None,
    )
    .await;
    let count = events["events"]
        .as_array()
        .or_else(|| events.as_array())
        .map_or(0, Vec::len);
    assert_eq!(count, 2);
}

/// The download's audit entry is committed while the content is read and opened: when
/// that entry cannot be written, the opened content is dropped, not served.
#[tokio::test]
async fn a_download_is_refused_when_its_audit_entry_cannot_be_written() {
    let test = test_app(HttpSettings::default()).await;
    let (holder, uri, _) = setup(&test).await;
    let bytes = pdf("Wqzcanari-telechargement", 150_000);
    let (_, first) = upload(&test, &holder, &uri, "bilan.pdf", bytes.clone()).await;
    let content = format!("{uri}/{}/content", first["id"].as_str().expect("id"));
    let (status, _, served) = download(&test, &holder, &content).await;
    assert_eq!(status, StatusCode::OK);
    assert!(served == bytes, "served whole while the trail works");

    crate::audit::break_the_trail(&test).await;
    let (status, _, body) = download(&test, &holder, &content).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !String::from_utf8_lossy(&body).contains("Wqzcanari-telechargement"),
        "nothing of the document was served"
    );
}
