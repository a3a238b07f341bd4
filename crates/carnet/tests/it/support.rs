use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const REFUSED: i32 = 78;

/// A data directory for one test, and how to run the binary on it.
pub struct Instance {
    pub dir: tempfile::TempDir,
}

impl Instance {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The binary with a clean environment (no inherited CARNET_ variables) and this
    /// instance's data directory.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_carnet"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CARNET_DATA_DIR", self.data_dir())
            .env("CARNET_LOG_FILTER", "warn")
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run carnet")
    }

    /// Starts `carnet serve` on a free loopback port and waits for its URL.
    pub fn serve(&self) -> Server {
        self.serve_with(|_| {})
    }

    pub fn serve_with(&self, configure: impl FnOnce(&mut Command)) -> Server {
        let mut command = self.command();
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        configure(&mut command);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn carnet serve");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(30)) {
            if let Some(url) = line.strip_prefix("Carnet écoute sur ") {
                return Server {
                    child,
                    url: url.trim_end_matches('/').to_owned(),
                    lines: lines_rx,
                    startup_output: seen,
                };
            }
            seen.push(line);
        }
        let _ = child.kill();
        let output = child.wait_with_output().expect("wait");
        panic!(
            "the server did not start: {seen:?} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A running server, stopped with SIGTERM when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub lines: mpsc::Receiver<String>,
    pub startup_output: Vec<String>,
}

impl Server {
    /// Sends SIGTERM and waits for the exit code and the rest of standard output.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        send_sigterm(self.child.id());
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        let rest: Vec<String> = self.lines.try_iter().collect();
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            send_sigterm(self.child.id());
            if wait_with_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
            }
        }
    }
}

fn send_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<i32> {
    let step = Duration::from_millis(50);
    for _ in 0..(timeout.as_millis() / step.as_millis()) {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(step);
    }
    None
}

pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts the binary refused with exit code 78 and one sentence containing `expected`.
pub fn assert_refused(output: &Output, expected: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(REFUSED), "stderr: {stderr}");
    assert!(
        stderr.contains(expected),
        "expected «{expected}» in: {stderr}"
    );
    assert_eq!(
        stderr
            .trim_end()
            .lines()
            .filter(|line| line.starts_with("carnet : "))
            .count(),
        1,
        "one sentence: {stderr}"
    );
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}
