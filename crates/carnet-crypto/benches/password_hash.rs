//! The cost of one Argon2id hash on this machine, at the OWASP minimum and above, to
//! choose the configured parameters. `cargo bench -p carnet-crypto --bench password_hash`.

#![expect(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

use std::time::Instant;

use carnet_crypto::{HashingCost, PasswordHashing, SystemRandom};

fn main() {
    for cost in [
        HashingCost::MINIMUM,
        HashingCost {
            memory_kib: 46 * 1024,
            iterations: 2,
            parallelism: 1,
        },
        HashingCost {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        },
    ] {
        let hashing = PasswordHashing::new(cost, &SystemRandom).expect("parameters");
        let stored = hashing
            .hash(b"Tilleul-Maree-42!", &SystemRandom)
            .expect("hash");
        let mut times = Vec::new();
        for _ in 0..9 {
            let started = Instant::now();
            std::hint::black_box(hashing.verify(b"Tilleul-Maree-42!", &stored));
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "Argon2id m={} KiB t={} p={}: median {:.1} ms per verification (min {:.1}, max {:.1})",
            cost.memory_kib, cost.iterations, cost.parallelism, times[4], times[0], times[8]
        );
    }
}
