//! Command-line behaviour that is not one feature's: reading commands refuse a store that does not exist
//! (instead of creating an empty one), a closed output pipe ends a command quietly, and a malformed graph
//! file gets a clear error with its row.

mod common;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn reading_commands_refuse_a_store_that_does_not_exist() {
    let d = common::tmp("commands", "missing");
    let db = d.join("missing.db");
    for cmd in [&["score"][..], &["network"], &["stats"], &["index"]] {
        let out = Command::new(common::bin())
            .args(cmd)
            .args(["--db", db.to_str().unwrap()])
            .output()
            .expect("run");
        assert!(!out.status.success(), "{cmd:?} succeeded on a missing store");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no store at"), "{cmd:?}: {err}");
        assert!(!db.exists(), "{cmd:?} created {}", db.display());
    }
}

#[test]
fn a_closed_output_pipe_ends_a_command_quietly() {
    // Many codes in, a reader that closes at once: the writes fail with a broken pipe.
    let mut child = Command::new(common::bin())
        .args(["uscc", "check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().expect("stdin");
    let feed = std::thread::spawn(move || {
        for _ in 0..200_000 {
            if writeln!(stdin, "91330604MA2B7Y8F54").is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().expect("wait");
    feed.join().expect("feeder");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

#[test]
fn a_malformed_graph_file_gets_an_error_with_its_row() {
    let d = common::tmp("commands", "graph");
    std::fs::write(d.join("nodes.csv"), "id,equity,pd\nA,100,0.01\nB,NaN,0.02\n").unwrap();
    std::fs::write(
        d.join("edges.csv"),
        "guarantor,borrower,amount,lender,kind\nA,B,10,bank01,single\n",
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["network", "--graph", d.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nodes.csv row 3") && err.contains("not a finite number"),
        "{err}"
    );
    std::fs::write(d.join("nodes.csv"), "id,equity,pd\nA,100,0.01\nB,50,0.02\n").unwrap();
    std::fs::write(
        d.join("edges.csv"),
        "guarantor,borrower,amount,lender,kind\nA,C,10,bank01,single\n",
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["network", "--graph", d.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("edges.csv row 2") && err.contains("unknown node"), "{err}");
}
