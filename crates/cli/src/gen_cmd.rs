//! `xinyong gen`: the synthetic district generator's command line.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use xinyong_gen::GenConfig;

#[derive(Clone, Copy, ValueEnum)]
pub enum Scale {
    Demo,
    District,
}

#[derive(Args)]
pub struct GenArgs {
    #[arg(long, value_enum, default_value = "demo")]
    pub scale: Scale,
    /// Override the number of enterprises.
    #[arg(long)]
    pub enterprises: Option<usize>,
    /// Override the number of simulated years.
    #[arg(long)]
    pub years: Option<u32>,
    #[arg(long, default_value_t = 20151231)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
    /// Build the world and write the hidden truth only (to calibrate the health process).
    #[arg(long)]
    pub truth_only: bool,
    /// Worker threads (the output is identical for any count).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write just the relation graph (nodes.csv, edges.csv) with the district's structure, for scale tests
    /// of `xinyong network --graph DIR`.
    #[arg(long)]
    pub graph_only: bool,
    /// With --graph-only: the number of district firms (default: --enterprises, or the scale's).
    #[arg(long)]
    pub firms: Option<usize>,
}

pub fn config(a: &GenArgs) -> GenConfig {
    let mut c = match a.scale {
        Scale::Demo => GenConfig::demo(a.seed),
        Scale::District => GenConfig::district(a.seed),
    };
    if let Some(n) = a.enterprises {
        c.enterprises = n;
    }
    if let Some(y) = a.years {
        c.years = y.max(2);
    }
    c.truth_only = a.truth_only;
    c
}

/// A progress bar on standard error for long work; silent when not a terminal.
pub fn bar() -> impl Fn(&str, u64, u64) + Sync {
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed_precise}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    move |msg: &str, done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
        if pb.message() != msg {
            pb.set_message(msg.to_string());
        }
        if done >= total {
            pb.finish_and_clear();
        }
    }
}

pub fn run(a: &GenArgs) -> Result<()> {
    let cfg = config(a);
    if a.graph_only {
        let n = a.firms.unwrap_or(cfg.enterprises);
        let t = std::time::Instant::now();
        let s = xinyong_gen::graph::generate(n, a.seed, &a.out)
            .with_context(|| format!("writing the graph into {}", a.out.display()))?;
        println!(
            "wrote the relation graph of {} district firms and {} outside firms ({} guarantee contracts) to {} in {:.1} s",
            s.firms,
            s.outside,
            s.edges,
            a.out.display(),
            t.elapsed().as_secs_f64()
        );
        let pats: Vec<String> = s.by_pattern.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("contracts by pattern: {}", pats.join(", "));
        return Ok(());
    }
    let go = || xinyong_gen::generate(&cfg, &a.out, &bar());
    let summary = match a.threads {
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build()
            .context("thread pool")?
            .install(go),
        None => go(),
    }
    .with_context(|| format!("generating into {}", a.out.display()))?;
    println!(
        "generated {} firms, {} batches, {} source records, {:.1} MB; defaults {}, annual default rate {:.2} %, oracle AUC {:.3}",
        summary.firms,
        summary.batches,
        summary.records,
        summary.bytes as f64 / 1e6,
        summary.defaults,
        summary.annual_default_rate * 100.0,
        summary.oracle_auc
    );
    Ok(())
}
