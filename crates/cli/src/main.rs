//! `xinyong`: the command line. Flags are parsed here and turned into calls on the library crates.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod gen_cmd;
mod uscc_cmd;

#[derive(Parser)]
#[command(name = "xinyong", version, about = "xinyong (信用): an open enterprise credit information platform")]
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
}

#[derive(Subcommand)]
enum UsccCmd {
    /// Validate codes given as arguments, or one per line on standard input. One output line per
    /// input line: `CODE<TAB>valid` or `CODE<TAB>invalid<TAB>REASON`.
    Check { codes: Vec<String> },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Uscc { cmd: UsccCmd::Check { codes } } => uscc_cmd::check(&codes),
        Cmd::Gen(a) => gen_cmd::run(&a),
    }
}
