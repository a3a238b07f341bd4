//! The real binary's resident memory (issue #6 asks for a server of at most 50 MB idle),
//! selected by `CARNET_BENCH` like the other benchmarks (skipped when unset; `smoke` in
//! CI only checks that the harness works). It prints and asserts nothing about size:
//!
//! ```sh
//! CARNET_BENCH=full cargo nextest run --release -p carnet -E 'test(benchmark_)' --no-capture
//! ```
//!
//! `carnet serve` starts on a new SQLite instance (no other service), answers the home
//! page and `/readyz` a number of times, rests one second, and its `/proc` status gives
//! the resident size then (`VmRSS`) and the largest it ever was (`VmHWM`, which includes
//! the first start's migrations). This measures the server alone, unlike the in-process
//! HTTP benchmark of carnet-http, whose figure holds the test harness and a second pool.

use std::time::Duration;

use crate::support::{Instance, http_client};

/// A size field of the server's `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    carnet_testkit::proc_status_kib(&pid.to_string(), field)
        .expect("a size in the server's /proc status")
}

#[tokio::test]
async fn benchmark_resident_memory_of_the_binary() {
    let requests = match std::env::var("CARNET_BENCH").as_deref() {
        Ok("full") => 2_000,
        Ok("smoke") => 20,
        _ => return,
    };
    let instance = Instance::new();
    let server = instance.serve();
    let pid = server.child.id();
    let started_kib = status_kib(pid, "VmRSS:");
    let client = http_client();
    for path in ["/", "/readyz"] {
        for _ in 0..requests / 2 {
            let answer = client
                .get(format!("{}{path}", server.url))
                .send()
                .await
                .expect("GET");
            assert_eq!(answer.status(), 200, "{path}");
            answer.bytes().await.expect("body");
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = status_kib(pid, "VmRSS:");
    let peak_kib = status_kib(pid, "VmHWM:");
    println!(
        "carnet serve, new SQLite instance: resident {:.1} MB once started, {:.1} MB idle \
         after {requests} requests, largest {:.1} MB",
        started_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
    assert!(idle_kib > 0 && peak_kib >= idle_kib, "the sizes were read");
    server.terminate();
}
