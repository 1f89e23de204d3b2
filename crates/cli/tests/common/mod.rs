//! Helpers shared by the end-to-end tests: the binary, scratch folders, running a command.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_xinyong")
}

/// A fresh scratch folder named after the test binary's purpose, the process and `name`.
pub fn tmp(purpose: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xinyong-{purpose}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

/// Runs `xinyong ARGS` with a fixed clock; panics with its output unless it succeeds; returns standard output.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .env("XINYONG_CLOCK", "2026-02-01T00:00:00")
        .output()
        .expect("run xinyong");
    assert!(
        out.status.success(),
        "xinyong {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
