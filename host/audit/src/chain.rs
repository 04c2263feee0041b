//! The hash chain: each record holds its sequence number and the hash of
//! the line before it. [`check_links`] walks a run of lines and names the
//! first broken link — which record, on which line, and what was done to
//! it as far as the chain can tell (changed, removed, inserted, reordered).
//! The writer checks the records after its last checkpoint with it on
//! opening; [`crate::verify`] walks the whole trail.

use crate::problem::Problem;
use crate::record::{Line, Record, sha256_hex};

/// The first 12 hex digits of a hash, for messages.
pub(crate) fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn seq_of(line: &Line<'_>) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line.bytes)
        .ok()
        .map(|s| s.seq)
}

/// Checks that `lines` are records `first_seq, first_seq + 1, …`, the first
/// holding `first_prev` and each the hash of the one before; line numbers
/// are counted from `line_offset`. Returns the next sequence number and the
/// last record's hash.
pub(crate) fn check_links(
    lines: &[Line<'_>],
    first_seq: u64,
    first_prev: &str,
    line_offset: usize,
) -> Result<(u64, String), Problem> {
    let last = chain(lines, first_seq, first_prev, line_offset, |_| {})?;
    Ok((first_seq + lines.len() as u64, last))
}

/// The walk behind [`check_links`]; `each` sees every record and its hash.
pub(crate) fn chain(
    lines: &[Line<'_>],
    first_seq: u64,
    first_prev: &str,
    line_offset: usize,
    mut each: impl FnMut((&Record, &str, &Line<'_>)),
) -> Result<String, Problem> {
    let mut prev = first_prev.to_owned();
    let hashes: Vec<String> = lines.iter().map(|l| sha256_hex(l.bytes)).collect();
    for (i, line) in lines.iter().enumerate() {
        let number = line.number + line_offset;
        let expected = first_seq + i as u64;
        let record: Record = serde_json::from_slice(line.bytes).map_err(|e| {
            Problem::at_record(
                expected,
                number,
                format!("record {expected} is not an audit record any more ({e}): it was changed"),
            )
        })?;
        if record.seq != expected {
            return Err(out_of_sequence(lines, i, expected, &record, line_offset));
        }
        if record.prev != prev {
            return Err(broken_link(
                lines,
                &hashes,
                i,
                expected,
                &record,
                &prev,
                line_offset,
            ));
        }
        each((&record, &hashes[i], line));
        prev.clone_from(&hashes[i]);
    }
    Ok(prev)
}

/// Why the line at `i`, holding `record`, is not record `expected`: out
/// of order, changed, missing records or an inserted one.
fn out_of_sequence(
    lines: &[Line<'_>],
    i: usize,
    expected: u64,
    record: &Record,
    line_offset: usize,
) -> Problem {
    let number = lines[i].number + line_offset;
    let later = lines[i + 1..]
        .iter()
        .find(|l| seq_of(l) == Some(expected))
        .map(|l| l.number + line_offset);
    let next_seq = lines.get(i + 1).and_then(seq_of);
    let message = match later {
        Some(at) => format!(
            "records are out of order: record {expected} belongs here but this line holds record {}, and record {expected} is at line {at}",
            record.seq
        ),
        None if next_seq == Some(expected + 1) => format!(
            "record {expected} was changed: it calls itself record {}",
            record.seq
        ),
        None if record.seq > expected => {
            let missing = record.seq - expected;
            let range = if missing == 1 {
                format!("record {expected} is")
            } else {
                format!("records {expected} to {} are", record.seq - 1)
            };
            let after = match expected.checked_sub(1) {
                Some(before) => format!("right after record {before}"),
                None => "at the start of the trail".to_owned(),
            };
            format!(
                "{range} missing: this line holds record {} {after}",
                record.seq
            )
        }
        None => format!(
            "a record was inserted: this line holds record {} again where record {expected} belongs",
            record.seq
        ),
    };
    Problem::at_record(expected, number, message)
}

/// Why record `expected` (at `i`) does not hold `prev`, the hash of the
/// line before it: which of the two was changed.
fn broken_link(
    lines: &[Line<'_>],
    hashes: &[String],
    i: usize,
    expected: u64,
    record: &Record,
    prev: &str,
    line_offset: usize,
) -> Problem {
    let number = lines[i].number + line_offset;
    if expected == 0 {
        return Problem::at_record(
            0,
            number,
            format!(
                "record 0 was changed: its prev is {} where the first record holds 64 zeros",
                short(&record.prev)
            ),
        );
    }
    // Changing a record changes its hash, which the next record
    // holds. If the next link holds too, this record's own `prev`
    // is intact and the one before it was changed; if the next link
    // breaks as well, this record was changed.
    let own_hash = &hashes[i];
    let next_link_holds = lines
        .get(i + 1)
        .and_then(|l| serde_json::from_slice::<Record>(l.bytes).ok())
        .is_none_or(|next| &next.prev == own_hash);
    let (blamed, line, message) = if next_link_holds {
        (
            expected - 1,
            number - 1,
            format!(
                "record {} was changed: it hashes to {}, but record {expected} holds {}",
                expected - 1,
                short(prev),
                short(&record.prev)
            ),
        )
    } else {
        (
            expected,
            number,
            format!(
                "record {expected} was changed: its prev ({}) is not the hash of record {} ({}), and record {} no longer holds its hash",
                short(&record.prev),
                expected - 1,
                short(prev),
                expected + 1
            ),
        )
    };
    Problem::at_record(blamed, line, message)
}
