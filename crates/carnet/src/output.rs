//! What the command line prints for the operator (standard output), apart from logs.

use std::io::Write as _;

/// Prints one line on standard output, flushed at once (tests and scripts read it live).
pub fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed standard output (a pipe whose reader left) must not stop the server.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
