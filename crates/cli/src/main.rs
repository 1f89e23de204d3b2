//! `xinyong`: the command line. Flags are parsed here and turned into calls on the library crates.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod feed_cmd;
mod gen_cmd;
mod network_cmd;
mod score_cmd;
mod scorecard_cmd;
mod serve_cmd;
mod store_cmd;
mod uscc_cmd;

/// mimalloc instead of the system allocator (docs/benchmarks.md, "Full recompute").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "xinyong",
    version,
    about = "xinyong (信用): an open enterprise credit information platform"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Unified Social Credit Code tools.
    Uscc {
        #[command(subcommand)]
        cmd: UsccCmd,
    },
    /// Generate a synthetic district: every source's exports, a manifest, and the hidden truth.
    Gen(gen_cmd::GenArgs),
    /// Ingest delivered files (or folders of them) into the store.
    Ingest(store_cmd::IngestArgs),
    /// Generate the demo district (or reuse it), ingest it, and print what the store holds.
    Demo(store_cmd::DemoArgs),
    /// Serve the web platform (search, the enterprise overview; /healthz, /metrics) over the store.
    Serve(serve_cmd::ServeArgs),
    /// Real-time feeds: `feed simulate` plays a district's later deliveries as signed pushes.
    Feed {
        #[command(subcommand)]
        cmd: feed_cmd::FeedCmd,
    },
    /// Web platform accounts: the demo accounts of each role; the list.
    Accounts {
        #[command(subcommand)]
        cmd: serve_cmd::AccountsCmd,
    },
    /// The web platform's audit log: check its hash chain.
    Audit {
        #[command(subcommand)]
        cmd: serve_cmd::AuditCmd,
    },
    /// Print what the store holds: firms, facts by source, quarantined rows by reason.
    Stats(store_cmd::StatsArgs),
    /// Show a stored fact, its provenance and its raw source row.
    Fact(store_cmd::FactArgs),
    /// List quarantined rows.
    Quarantine(store_cmd::QuarantineArgs),
    /// Write a backup of the store (one consistent snapshot, taken while ingest may go on) to a file.
    Backup(store_cmd::BackupArgs),
    /// Restore a backup file into a new, empty store (SQLite or PostgreSQL), checked by content hash.
    Restore(store_cmd::RestoreArgs),
    /// Copy a whole store into a new, empty one of either backend (e.g. SQLite to PostgreSQL), checked by
    /// content hash.
    Migrate(store_cmd::MigrateArgs),
    /// Fit, evaluate and show points scorecards on any CSV table.
    Scorecard(scorecard_cmd::ScorecardArgs),
    /// Recompute the credit models for the district as of a date (features, benchmarks, scores, warnings,
    /// the macro index) and store the run; or score single firms with --firm.
    Score(score_cmd::ScoreArgs),
    /// Show a firm's stored score: grade, forces against its industry, reasons with records, warnings, events.
    Firm(score_cmd::FirmArgs),
    /// Print the stored macro risk index.
    Index(score_cmd::IndexArgs),
    /// Validate the credit models against a generated district's hidden truth (the model card's figures).
    Validate(score_cmd::ValidateArgs),
    /// The guarantee network: groups, circles and their patterns, top contagion risks; `--what-if USCC…`
    /// stress tests with the paths that carry them; `--firm` the firm-centred view; `--circle` one group.
    Network(network_cmd::NetworkArgs),
}

#[derive(Subcommand)]
enum UsccCmd {
    /// Validate codes given as arguments, or one per line on standard input. One output line per
    /// input line: `CODE<TAB>valid` or `CODE<TAB>invalid<TAB>REASON`.
    Check { codes: Vec<String> },
}

/// A reader that stops early (`xinyong index | head`) closes the pipe: `println!` then panics. End quietly
/// instead, with the status a shell gives a process killed by SIGPIPE (128 + 13).
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("os error 32") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> Result<()> {
    quiet_on_closed_pipe();
    let r = run();
    if let Err(e) = &r {
        let closed = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if closed {
            std::process::exit(141);
        }
    }
    r
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Uscc {
            cmd: UsccCmd::Check { codes },
        } => uscc_cmd::check(&codes),
        Cmd::Gen(a) => gen_cmd::run(&a),
        Cmd::Ingest(a) => store_cmd::ingest(&a),
        Cmd::Demo(a) => store_cmd::demo(&a),
        Cmd::Serve(a) => serve_cmd::serve(&a),
        Cmd::Accounts { cmd } => serve_cmd::accounts(&cmd),
        Cmd::Feed { cmd } => feed_cmd::run(&cmd),
        Cmd::Audit { cmd } => serve_cmd::audit(&cmd),
        Cmd::Stats(a) => store_cmd::stats(&a),
        Cmd::Fact(a) => store_cmd::fact(&a),
        Cmd::Quarantine(a) => store_cmd::quarantine(&a),
        Cmd::Backup(a) => store_cmd::backup(&a),
        Cmd::Restore(a) => store_cmd::restore(&a),
        Cmd::Migrate(a) => store_cmd::migrate(&a),
        Cmd::Scorecard(a) => scorecard_cmd::run(&a),
        Cmd::Score(a) => score_cmd::score(&a),
        Cmd::Firm(a) => score_cmd::firm(&a),
        Cmd::Index(a) => score_cmd::index(&a),
        Cmd::Validate(a) => score_cmd::validate(&a),
        Cmd::Network(a) => network_cmd::run(&a),
    }
}
