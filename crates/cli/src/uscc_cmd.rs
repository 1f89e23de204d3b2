//! `xinyong uscc check`: bank staff use it to clean customer lists.

use anyhow::{Context, Result};
use std::io::{BufRead, BufWriter, Write};
use xinyong_domain::Uscc;

/// One verdict line for one input line; the input is echoed as given (without its line ending).
pub fn verdict(line: &str) -> String {
    match Uscc::parse(line) {
        Ok(_) => format!("{line}\tvalid"),
        Err(e) => format!("{line}\tinvalid\t{e}"),
    }
}

pub fn check(codes: &[String]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if !codes.is_empty() {
        for c in codes {
            writeln!(out, "{}", verdict(c))?;
        }
    } else {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).context("reading standard input")?;
            if n == 0 {
                break;
            }
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            // Undecodable bytes are replaced, never fatal: the line still gets its verdict.
            let line = String::from_utf8_lossy(&buf);
            writeln!(out, "{}", verdict(&line))?;
        }
    }
    out.flush()?;
    Ok(())
}
