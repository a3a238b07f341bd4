//! The checkpoint file: signed audit checkpoints appended outside the database, one per
//! line, so that someone who can rewrite every row still cannot hide it. Backups carry it
//! off the host; an operator can also point it at storage another machine collects.
//!
//! Line format (version 1): `carnet-checkpoint 1 <chain> <seq> <head hash hex>
//! <unix millis> <signature hex>`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use carnet_audit::{ChainId, Checkpoint};
use carnet_domain::Timestamp;

/// Appends checkpoints to the file (created 0600 if missing) and syncs it.
pub fn append(path: &Path, checkpoints: &[Checkpoint]) -> std::io::Result<()> {
    if checkpoints.is_empty() {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let mut text = String::new();
    for checkpoint in checkpoints {
        text.push_str(&format_line(checkpoint));
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

pub fn format_line(checkpoint: &Checkpoint) -> String {
    format!(
        "carnet-checkpoint 1 {} {} {} {} {}",
        checkpoint.chain,
        checkpoint.seq,
        carnet_audit::hex(&checkpoint.head_hash),
        checkpoint.at.unix_millis(),
        carnet_audit::hex(&checkpoint.signature)
    )
}

/// Reads every checkpoint of the file; a missing file has none. A line that cannot be
/// read is reported with its number (1-based).
pub fn read(path: &Path) -> Result<Vec<Checkpoint>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("{} illisible ({error})", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            parse_line(line).ok_or_else(|| {
                format!(
                    "{} ligne {} : point de contrôle illisible",
                    path.display(),
                    index + 1
                )
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Option<Checkpoint> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "carnet-checkpoint" || fields.next()? != "1" {
        return None;
    }
    let chain: ChainId = fields.next()?.parse().ok()?;
    let seq: u64 = fields.next()?.parse().ok()?;
    let head_hash: [u8; 32] = unhex(fields.next()?)?.try_into().ok()?;
    let at = Timestamp::from_unix_millis(fields.next()?.parse().ok()?);
    let signature = unhex(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    Some(Checkpoint {
        chain,
        seq,
        head_hash,
        at,
        signature,
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use carnet_audit::CheckpointSigner;

    use super::*;

    #[test]
    fn lines_round_trip_and_garbage_is_refused() {
        let signer = CheckpointSigner::from_seed(&[1; 32]).expect("seed");
        let checkpoint = signer.sign(
            ChainId::Instance,
            7,
            [9; 32],
            Timestamp::from_unix_millis(5),
        );
        assert_eq!(parse_line(&format_line(&checkpoint)), Some(checkpoint));
        for garbage in [
            "",
            "carnet-checkpoint 2 instance 1 00 1 00",
            "carnet-checkpoint 1 instance x",
            "é",
        ] {
            assert_eq!(parse_line(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn the_file_accumulates_checkpoints() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("checkpoints.log");
        assert_eq!(read(&path), Ok(Vec::new()));
        let signer = CheckpointSigner::from_seed(&[1; 32]).expect("seed");
        let first = signer.sign(
            ChainId::Instance,
            1,
            [1; 32],
            Timestamp::from_unix_millis(1),
        );
        let second = signer.sign(
            ChainId::Instance,
            2,
            [2; 32],
            Timestamp::from_unix_millis(2),
        );
        append(&path, std::slice::from_ref(&first)).expect("append");
        append(&path, std::slice::from_ref(&second)).expect("append");
        assert_eq!(read(&path), Ok(vec![first, second]));
        std::fs::write(&path, "nonsense\n").expect("write");
        assert!(read(&path).expect_err("garbage").contains("ligne 1"));
    }
}
