//! Test helpers shared by Carnet's crates. A dev-dependency only: nothing here ships.

#![expect(
    clippy::missing_panics_doc,
    reason = "test helpers panic with a message when the test environment is broken"
)]

/// A size field of a process's `/proc/<process>/status` (`VmRSS:`, `VmHWM:`…), in KiB;
/// `process` is a pid or `self`. None when the file or the field cannot be read.
pub fn proc_status_kib(process: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// An S3 server in process (s3s-fs over a temporary directory), checking request
/// signatures, on a loopback port. One bucket, `carnet-test`; stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    pub dir: tempfile::TempDir,
    pub settings: carnet_service::S3Settings,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl S3Server {
    /// Starts the server on the current Tokio runtime; `prefix` is the key prefix the
    /// settings carry.
    pub async fn start(prefix: &str) -> Self {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("carnet-test")).expect("bucket");
        let fs = s3s_fs::FileSystem::new(dir.path()).expect("s3s-fs");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            "carnet-test-access",
            "carnet-test-secret-0123456789",
        ));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        Self {
            dir,
            settings: carnet_service::S3Settings {
                endpoint: format!("http://{address}"),
                region: "us-east-1".into(),
                bucket: "carnet-test".into(),
                prefix: prefix.into(),
                access_key_id: "carnet-test-access".into(),
                secret_access_key: "carnet-test-secret-0123456789".into(),
            },
            task,
        }
    }

    /// Where the server keeps the objects written under the configured prefix.
    pub fn objects_dir(&self) -> std::path::PathBuf {
        self.dir
            .path()
            .join("carnet-test")
            .join(&self.settings.prefix)
    }
}
