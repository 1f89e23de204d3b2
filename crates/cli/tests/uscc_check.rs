//! Integration tests of `xinyong uscc check`: one verdict line per input line, in order, with the
//! input echoed; and agreement with python-stdnum on the shared vectors (via the shared tool).

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_xinyong");
const CHECK_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/tools/check-uscc-vectors");

/// Runs `xinyong uscc check ARGS...` with `stdin` as standard input.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(["uscc", "check"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xinyong");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    // Write from a thread so a large output can never dead-lock against our input.
    let writer = std::thread::spawn(move || input.write_all(&bytes));
    let out = child.wait_with_output().expect("run xinyong");
    writer.join().expect("writer thread").expect("write stdin");
    out
}

/// The output lines: each `(echo, verdict, rule)` with `rule` the reason's text before the first
/// colon (empty for a valid code).
fn verdicts(out: &Output) -> Vec<(String, String, String)> {
    assert!(
        out.status.success(),
        "exit status {:?}, stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).expect("output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last line is terminated: {text:?}"
    );
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(matches!(f.len(), 2 | 3), "{l:?}");
            let rule = f.get(2).map(|r| r.split(':').next().unwrap_or("")).unwrap_or("");
            (f[0].to_string(), f[1].to_string(), rule.to_string())
        })
        .collect()
}

/// `expected` holds `(echo, verdict, rule)` per input line, in order.
fn check(out: &Output, expected: &[(&str, &str, &str)]) {
    let got = verdicts(out);
    let want: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn stdin_gives_one_line_per_input_line_in_order() {
    let input: &[u8] = b"91110000600037341L\n\
        \n\
        91110000600037341N\r\n\
        9111\xff000600037341L\n\
        \xef\xbc\x99\xef\xbc\x91110000600037341L\n\
        91 110000 60003734-1l\n\
        \r\n\
        9144030071526726XG";
    let out = run(&[], input);
    check(
        &out,
        &[
            ("91110000600037341L", "valid", ""),
            ("", "invalid", "empty"),
            ("91110000600037341N", "invalid", "check"), // the CR is not part of the code
            // Undecodable bytes are replaced (U+FFFD) in the echo; the line still gets its verdict.
            ("9111\u{FFFD}000600037341L", "invalid", "character"),
            ("９１110000600037341L", "valid", ""), // full-width digits, echoed as given
            ("91 110000 60003734-1l", "valid", ""),
            ("", "invalid", "empty"),
            ("9144030071526726XG", "valid", ""), // no final newline
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().nth(1) == Some("\tinvalid\tempty"),
        "an empty line: {text:?}"
    );
    assert!(!text.contains('\r'), "CR never reaches the output: {text:?}");
}

#[test]
fn empty_stdin_gives_no_output() {
    check(&run(&[], b""), &[]);
}

#[test]
fn arguments_mode() {
    let out = run(
        &[
            "91110000600037341L",
            "",
            "９１１１００００６０００３７３４１Ｌ",
            "91110000600037342L",
            "12345",
        ],
        b"9144030071526726XG\n", // ignored when codes are given as arguments
    );
    check(
        &out,
        &[
            ("91110000600037341L", "valid", ""),
            ("", "invalid", "empty"),
            ("９１１１００００６０００３７３４１Ｌ", "valid", ""),
            ("91110000600037342L", "invalid", "org-check"),
            ("12345", "invalid", "length"),
        ],
    );
}

#[test]
fn agrees_with_the_shared_vectors() {
    let out = Command::new(CHECK_VECTORS)
        .arg(BIN)
        .output()
        .expect("run check-uscc-vectors (needs bash and python3)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-uscc-vectors failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or("");
    let counts = last
        .strip_prefix("agree ")
        .unwrap_or_else(|| panic!("last line {last:?}"));
    let (agree, total) = counts.split_once('/').unwrap_or_else(|| panic!("last line {last:?}"));
    let (agree, total): (usize, usize) = (agree.parse().unwrap(), total.parse().unwrap());
    assert_eq!(agree, total, "{stdout}");
    assert_eq!(total, 231 + 27, "every shared vector was checked");
}
