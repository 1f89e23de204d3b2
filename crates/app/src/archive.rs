//! The verbatim archive of delivered files: each file split into independent gzip members of about
//! 1 MB of source text (at line ends for text formats), stored with its batch, so that any row is read
//! back by decompressing one member; concatenated, the members are a valid gzip file of the original.

use crate::{AppError, Result};
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use xinyong_store::ArchiveChunk;

const CHUNK: usize = 1 << 20;

/// Splits and compresses `data` (the decompressed delivered bytes). `by_lines`: split at line ends
/// and number rows by line (CSV, JSON lines); otherwise one chunk (xlsx).
pub fn chunks(data: &[u8], by_lines: bool) -> Result<Vec<ArchiveChunk>> {
    let mut out = Vec::new();
    let (mut start, mut row) = (0usize, 1u64);
    loop {
        let mut end = if by_lines {
            (start + CHUNK).min(data.len())
        } else {
            data.len()
        };
        if by_lines && end < data.len() {
            end = match data[end..].iter().position(|&b| b == b'\n') {
                Some(p) => end + p + 1,
                None => data.len(),
            };
        }
        let piece = &data[start..end];
        let mut enc = GzEncoder::new(Vec::with_capacity(piece.len() / 4), flate2::Compression::fast());
        enc.write_all(piece)
            .map_err(|e| AppError::Other(format!("archive: {e}")))?;
        let gz = enc.finish().map_err(|e| AppError::Other(format!("archive: {e}")))?;
        out.push(ArchiveChunk {
            chunk: out.len() as u32,
            first_row: row,
            data: gz,
        });
        row += piece.iter().filter(|&&b| b == b'\n').count() as u64;
        start = end;
        if start >= data.len() {
            break;
        }
    }
    Ok(out)
}

/// One chunk, decompressed.
pub fn inflate(c: &ArchiveChunk) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&c.data[..])
        .read_to_end(&mut out)
        .map_err(|e| AppError::Other(format!("archive: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_the_original() {
        let mut data = Vec::new();
        for i in 0..200_000 {
            data.extend_from_slice(format!("{i},row,{}\n", i * 7).as_bytes());
        }
        let cs = chunks(&data, true).unwrap();
        assert!(cs.len() > 1);
        let mut back = Vec::new();
        for c in &cs {
            let piece = inflate(c).unwrap();
            // Each chunk starts at the row it says.
            let first = std::str::from_utf8(&piece).unwrap().lines().next().unwrap();
            assert_eq!(
                first.split(',').next().unwrap().parse::<u64>().unwrap() + 1,
                c.first_row
            );
            back.extend(piece);
        }
        assert_eq!(back, data);
        let mut all = Vec::new();
        for c in &cs {
            all.extend_from_slice(&c.data);
        }
        let mut whole = Vec::new();
        flate2::read::MultiGzDecoder::new(&all[..])
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, data);
        assert_eq!(chunks(b"", true).unwrap().len(), 1);
    }
}
