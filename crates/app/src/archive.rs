//! The verbatim archive of delivered files: each file stored once by content hash, as a sequence of
//! independent gzip members of about 1 MB of source text each (a valid gzip file as a whole), so that
//! any row can be read back by decompressing one member.

use crate::{io, Result};
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use xinyong_store::ArchiveChunk;

const CHUNK: usize = 1 << 20;

/// Writes `data` (decompressed source bytes) to `path`, fsynced, and returns its chunks. `by_lines`:
/// split at line ends and number rows by line (CSV, JSON lines); otherwise one chunk (xlsx).
pub fn write(path: &Path, data: &[u8], by_lines: bool) -> Result<Vec<ArchiveChunk>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("part");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    let mut chunks = Vec::new();
    let (mut start, mut row, mut offset) = (0usize, 1u64, 0u64);
    while start < data.len() || (data.is_empty() && chunks.is_empty()) {
        let mut end = (start + CHUNK).min(data.len());
        if by_lines && end < data.len() {
            end = match data[end..].iter().position(|&b| b == b'\n') {
                Some(p) => end + p + 1,
                None => data.len(),
            };
        } else if !by_lines {
            end = data.len();
        }
        let piece = &data[start..end];
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(piece).map_err(io(&tmp))?;
        let gz = enc.finish().map_err(io(&tmp))?;
        f.write_all(&gz).map_err(io(&tmp))?;
        chunks.push(ArchiveChunk {
            chunk: chunks.len() as u32,
            first_row: row,
            offset,
            len: gz.len() as u64,
        });
        offset += gz.len() as u64;
        row += piece.iter().filter(|&&b| b == b'\n').count() as u64;
        start = end;
        if data.is_empty() {
            break;
        }
    }
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    }
    Ok(chunks)
}

/// Reads one chunk back, decompressed.
pub fn read_chunk(path: &Path, c: &ArchiveChunk) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(io(path))?;
    f.seek(SeekFrom::Start(c.offset)).map_err(io(path))?;
    let mut gz = vec![0u8; c.len as usize];
    f.read_exact(&mut gz).map_err(io(path))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .map_err(io(path))?;
    Ok(out)
}
