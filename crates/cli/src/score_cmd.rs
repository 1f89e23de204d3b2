//! `xinyong score`, `firm`, `index`: the credit models' commands.

use crate::store_cmd::{open, DbArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use xinyong_app::credit::{self, ModelChoice, ScoreOptions};
use xinyong_credit::features::{self, Force};
use xinyong_credit::score::{FirmScore, ScoringConfig};
use xinyong_credit::warnings::{self, Rule};
use xinyong_store::Store;

#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Score as of this date (YYYY-MM-DD): only facts valid and known by then are used. Default: the data
    /// cut-off (the latest delivery date in the store).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Train a new model on the data known by the as-of date (default: use the latest stored model, training
    /// one when there is none).
    #[arg(long)]
    pub train: bool,
    /// Use this model artefact (JSON, as written by --export-model).
    #[arg(long, conflicts_with = "train")]
    pub model: Option<PathBuf>,
    /// Write the model used to this file.
    #[arg(long)]
    pub export_model: Option<PathBuf>,
    /// Warning rules (TOML, the format of crates/credit/catalogue/warnings.toml).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Scoring configuration (TOML, the format of crates/credit/catalogue/scoring.toml); used when training.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Incremental: score just these firms with the stored model and the latest run's benchmarks, and print
    /// them (nothing is stored).
    #[arg(long = "firm")]
    pub firms: Vec<String>,
    /// The wall-clock time recorded on the run.
    #[arg(long, env = "XINYONG_CLOCK")]
    pub clock: Option<String>,
    /// Benchmark the scoring core: compute every firm's indicators and card points as of the date with the
    /// latest stored model (or --model), write them to this CSV (uscc, the indicators, points) and print the
    /// time spent; nothing is stored.
    #[arg(long)]
    pub bench_core: Option<PathBuf>,
    /// Instead of scoring: write the training rows (indicators and the 12-month default label per firm
    /// snapshot) to this CSV file.
    #[arg(long)]
    pub export_training: Option<PathBuf>,
}

#[derive(Args)]
pub struct FirmArgs {
    #[command(flatten)]
    pub db: DbArgs,
    pub uscc: String,
    /// A stored run (default: the latest).
    #[arg(long)]
    pub run: Option<String>,
}

#[derive(Args)]
pub struct IndexArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// district, industry, township, cluster, size or force.
    #[arg(long, default_value = "district")]
    pub dimension: String,
    #[arg(long)]
    pub run: Option<String>,
    /// Drill down: the firms that moved each group's index most in this month (YYYY-MM).
    #[arg(long)]
    pub movers: Option<String>,
}

impl ScoreArgs {
    /// Defaults for a store: score as of its data cut-off with the latest stored model (training one if none).
    pub fn for_db(db: &std::path::Path) -> ScoreArgs {
        ScoreArgs {
            db: DbArgs { db: db.to_path_buf() },
            as_of: None,
            train: false,
            model: None,
            export_model: None,
            rules: None,
            config: None,
            firms: Vec::new(),
            clock: None,
            export_training: None,
            bench_core: None,
        }
    }
}

/// Prints the stored overview of a few firms of the latest run: the riskiest red firm, a yellow one, and the
/// best-scored one.
pub fn show_examples(store: &dyn Store) -> Result<()> {
    let run = pick_run(store, None)?;
    let scores = store.run_scores(&run)?;
    let red = scores
        .iter()
        .filter(|s| s.colour.as_deref() == Some("red"))
        .max_by(|a, b| a.pd.total_cmp(&b.pd));
    let yellow = scores.iter().find(|s| s.colour.as_deref() == Some("yellow"));
    let best = scores.iter().max_by(|a, b| a.score.total_cmp(&b.score));
    for s in [red, yellow, best].into_iter().flatten() {
        println!();
        if let Some(json) = store.run_score(&run, &s.uscc)? {
            let f: FirmScore = serde_json::from_str(&json)?;
            print_firm(&f);
        }
    }
    println!();
    println!("more: `xinyong firm USCC --db DB`, `xinyong index --db DB --dimension industry`, `xinyong score --db DB --firm USCC`");
    Ok(())
}

/// The rules with the approved settings applied: `rule.ID.enabled = false` drops a rule, `rule.ID.colour`
/// recolours it.
pub fn apply_settings(rules: Vec<Rule>, settings: &std::collections::BTreeMap<String, String>) -> Vec<Rule> {
    rules
        .into_iter()
        .filter(|r| settings.get(&format!("rule.{}.enabled", r.id)).map(String::as_str) != Some("false"))
        .map(|mut r| {
            match settings.get(&format!("rule.{}.colour", r.id)).map(String::as_str) {
                Some("red") => r.colour = warnings::Colour::Red,
                Some("yellow") => r.colour = warnings::Colour::Yellow,
                Some("blue") => r.colour = warnings::Colour::Blue,
                _ => {}
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approved_settings_turn_rules_off_and_recolour_them() {
        let all = warnings::builtin_rules();
        let (a, b) = (all[0].id, all[1].id);
        let mut s = std::collections::BTreeMap::new();
        s.insert(format!("rule.{a}.enabled"), "false".to_string());
        s.insert(format!("rule.{b}.colour"), "blue".to_string());
        let out = apply_settings(all.clone(), &s);
        assert_eq!(out.len(), all.len() - 1);
        assert!(out.iter().all(|r| r.id != a));
        assert_eq!(out.iter().find(|r| r.id == b).unwrap().colour, warnings::Colour::Blue);
        assert_eq!(apply_settings(all.clone(), &Default::default()).len(), all.len());
    }
}

pub fn rules(path: Option<&PathBuf>) -> Result<Vec<Rule>> {
    match path {
        None => Ok(warnings::builtin_rules()),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            warnings::parse_rules(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
    }
}

fn now(clock: Option<&str>) -> String {
    clock
        .map(str::to_string)
        .unwrap_or_else(|| chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string())
}

pub fn score(a: &ScoreArgs) -> Result<()> {
    let mut store = open(&a.db.db)?;
    let as_of = match &a.as_of {
        Some(d) => d.clone(),
        None => store
            .data_cutoff()?
            .context("the store holds no deliveries: ingest first")?,
    };
    // The settings administrators approved (maker-checker, in the web platform): rules off or recoloured, the
    // active model version.
    let settings = xinyong_store::rows::settings(&*store)?;
    let rules = apply_settings(rules(a.rules.as_ref())?, &settings);
    if !a.firms.is_empty() {
        // Incremental: the model and benchmarks are loaded once (as a server holds them); each firm is then
        // read from the store and scored alone.
        let t = Instant::now();
        let scorer = credit::Scorer::open(&*store, rules)?;
        let open_ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut times = Vec::new();
        for u in &a.firms {
            let t = Instant::now();
            let s = scorer.score(&*store, u, &as_of)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if a.firms.len() <= 5 {
                print_firm(&s);
            }
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "scored {} firm(s) alone: per firm p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (model and benchmarks loaded once in {open_ms:.1} ms)",
            times.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        return Ok(());
    }
    let config = match &a.config {
        Some(p) => ScoringConfig::parse(&std::fs::read_to_string(p)?).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => ScoringConfig::builtin(),
    };
    if let Some(p) = &a.bench_core {
        let model = match &a.model {
            Some(m) => std::fs::read_to_string(m)?,
            None => {
                credit::latest_model(&*store)?
                    .context("no stored model: run `xinyong score` first")?
                    .1
            }
        };
        let model = xinyong_credit::CreditModel::from_json(&model).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (rows, t_load, t_compute, cache) = credit::core(&*store, &as_of, &model)?;
        let mut csv = String::from("uscc,");
        csv.push_str(&features::IDS.join(","));
        csv.push_str(",points\n");
        for (u, vals, pts) in &rows {
            csv.push_str(u);
            for v in vals {
                csv.push(',');
                if let Some(x) = v {
                    csv.push_str(&format!("{x}"));
                }
            }
            csv.push_str(&format!(",{pts}\n"));
        }
        std::fs::write(p, csv)?;
        println!(
            "core: {} firms as of {as_of}: load {t_load:.3} s ({}), indicators and points {t_compute:.3} s; wrote {}",
            rows.len(),
            cache.describe(),
            p.display()
        );
        return Ok(());
    }
    if let Some(p) = &a.export_training {
        let csv = credit::training_csv(&*store, &as_of, &config)?;
        std::fs::write(p, &csv).with_context(|| format!("writing {}", p.display()))?;
        println!("wrote {} training rows to {}", csv.lines().count() - 1, p.display());
        return Ok(());
    }
    let model = match (&a.model, a.train) {
        (Some(p), _) => {
            ModelChoice::Given(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        (None, true) => ModelChoice::Train,
        (None, false) => match settings.get("model.active") {
            Some(v) => match store.model(Some(v))? {
                Some((_, json)) => ModelChoice::Given(json),
                None => anyhow::bail!("the approved active model {v} is not in the store"),
            },
            None => ModelChoice::LatestOrTrain,
        },
    };
    let t = Instant::now();
    let s = credit::score_district(
        &mut *store,
        ScoreOptions {
            as_of: &as_of,
            model,
            config,
            rules,
            now: now(a.clock.as_deref()),
        },
    )?;
    let secs = t.elapsed().as_secs_f64();
    if let Some(p) = &a.export_model {
        std::fs::write(p, s.model.to_json())?;
    }
    let o = &s.output;
    println!(
        "scored {} firms as of {} with model {} ({}) in {secs:.1} s; {} facts read",
        o.scores.len(),
        o.as_of,
        s.model.version,
        if s.trained { "trained now" } else { "stored" },
        s.loaded_facts
    );
    println!(
        "  load {:.1} s ({}), train {:.1} s, compute {:.1} s ({} months of index history), store {:.1} s",
        s.timings[0],
        s.cache.describe(),
        s.timings[1],
        s.timings[2],
        s.model.config.index_months,
        s.timings[3]
    );
    for (reason, n) in &s.skipped {
        println!("  {n} facts unreadable ({reason}), not used");
    }
    let m = &s.model;
    println!(
        "model: {} training rows ({} defaults), snapshots {} .. {}, {} indicators in the card",
        m.rows,
        m.bads,
        m.first_snapshot,
        m.last_snapshot,
        m.card.features.len()
    );
    if let Some(v) = &m.validation {
        println!(
            "out-of-time check on {}: AUC {:.3}, KS {:.3} ({} firms, {} defaults)",
            v.snapshot, v.auc, v.ks, v.rows, v.bads
        );
    }
    summary(&*store, &s.run_id, o)?;
    Ok(())
}

fn summary(store: &dyn Store, run_id: &str, o: &xinyong_credit::RunOutput) -> Result<()> {
    let mut grades: std::collections::BTreeMap<String, usize> = Default::default();
    let mut colours: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in &o.scores {
        *grades.entry(s.grade.clone()).or_default() += 1;
        *colours.entry(s.colour.map_or("none", |c| c.key())).or_default() += 1;
    }
    let cfg = ScoringConfig::builtin();
    let order: Vec<String> = cfg.grades.iter().map(|g| g.grade.clone()).collect();
    let line: Vec<String> = order
        .iter()
        .filter_map(|g| grades.get(g).map(|n| format!("{g} {n}")))
        .collect();
    println!("grades: {}", line.join(", "));
    println!(
        "colours: red {}, yellow {}, blue {}, none {}",
        colours.get("red").unwrap_or(&0),
        colours.get("yellow").unwrap_or(&0),
        colours.get("blue").unwrap_or(&0),
        colours.get("none").unwrap_or(&0)
    );
    let mut by_rule: std::collections::BTreeMap<u32, usize> = Default::default();
    for s in &o.scores {
        for w in &s.warnings {
            *by_rule.entry(w.rule).or_default() += 1;
        }
    }
    let rules = warnings::builtin_rules();
    let fired: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r}:{n}")).collect();
    println!(
        "warnings in force by rule ({} of {} rules): {}",
        by_rule.len(),
        rules.len(),
        fired.join(" ")
    );
    println!("change events recorded: {}", o.events.len());
    let idx = store.run_index(run_id, Some("district"))?;
    let pts: Vec<String> = idx
        .iter()
        .rev()
        .take(6)
        .rev()
        .map(|(m, _, _, v)| format!("{m} {v:.1}"))
        .collect();
    println!(
        "district risk index (base {} = 100): {}",
        idx.first().map_or("", |x| x.0.as_str()),
        pts.join(", ")
    );
    Ok(())
}

fn print_firm(s: &FirmScore) {
    println!(
        "{} as of {}: score {:.0}, PD {:.2} %, grade {}{}, colour {}",
        s.uscc,
        s.as_of,
        s.score,
        s.pd * 100.0,
        s.grade,
        if s.grade != s.grade_unadjusted {
            format!(" (unadjusted {})", s.grade_unadjusted)
        } else {
            String::new()
        },
        s.colour.map_or("none", |c| c.key())
    );
    for f in Force::ALL {
        let k = f.index();
        println!(
            "  {} {:>5.1}  (percentile in {}: {})",
            f.name_zh(),
            s.forces[k],
            s.benchmark_group,
            s.force_percentiles[k].map_or("-".into(), |p| format!("{p:.0}"))
        );
    }
    for r in &s.reasons {
        let ev: Vec<String> = r
            .evidence
            .iter()
            .map(|p| format!("{} {} #{} {}", p.source, p.dataset, p.fact_id, p.date))
            .collect();
        println!(
            "  reason: {} ({}) = {} (industry median {}), -{:.1} points; records: {}",
            r.name_zh,
            r.indicator,
            r.value.map_or("missing".into(), |v| format!("{v:.3}")),
            r.industry_median.map_or("-".into(), |v| format!("{v:.3}")),
            r.points_lost,
            ev.join("; ")
        );
    }
    let rules = warnings::builtin_rules();
    for w in &s.warnings {
        let r = rules.iter().find(|r| r.id == w.rule);
        println!(
            "  warning {} {} [{}] since {} clears {} evidence {:?}",
            w.rule,
            r.map_or("", |r| r.name_zh.as_str()),
            w.colour.key(),
            w.since.as_deref().unwrap_or("-"),
            w.clears_on.as_deref().unwrap_or("when the condition ends"),
            w.evidence
        );
    }
}

fn pick_run(store: &dyn Store, run: Option<&String>) -> Result<String> {
    match run {
        Some(r) => Ok(r.clone()),
        None => Ok(store
            .runs()?
            .first()
            .context("no stored run: run `xinyong score` first")?
            .run_id
            .clone()),
    }
}

pub fn firm(a: &FirmArgs) -> Result<()> {
    let store = open(&a.db.db)?;
    let run = pick_run(&*store, a.run.as_ref())?;
    let Some(json) = store.run_score(&run, &a.uscc)? else {
        bail!("{} has no score in run {run}", a.uscc);
    };
    let s: FirmScore = serde_json::from_str(&json)?;
    print_firm(&s);
    for e in store.credit_events(Some(&a.uscc))? {
        println!(
            "  event {} {}{} {} -> {}",
            e.date,
            e.kind,
            e.rule.map_or(String::new(), |r| format!(" rule {r}")),
            e.before,
            e.after
        );
    }
    Ok(())
}

pub fn index(a: &IndexArgs) -> Result<()> {
    let store = open(&a.db.db)?;
    let run = pick_run(&*store, a.run.as_ref())?;
    let mut last = String::new();
    for (month, dim, member, v) in store.run_index(&run, Some(&a.dimension))? {
        if member != last {
            println!("{dim} {member}");
            last = member.clone();
        }
        if a.movers.as_deref().is_none_or(|m| m == month) {
            println!("  {month} {v:7.1}");
        }
        if a.movers.as_deref() == Some(month.as_str()) {
            for (u, d) in store.run_movers(&run, &dim, &member, &month)? {
                println!(
                    "    {u} moved the group's exposure-weighted PD by {:+.3} percentage points",
                    d * 100.0
                );
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The generator's hidden truth (the `truth/` folder of a generated district).
    #[arg(long)]
    pub truth: PathBuf,
    #[arg(long)]
    pub rules: Option<PathBuf>,
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also write each firm of the population to this CSV file: uscc, pd, score, grade, oracle_pd, default (PDs
    /// at full precision; for analysis beside the truth, which the model never reads).
    #[arg(long)]
    pub scores: Option<PathBuf>,
}

/// Prints the model card's figures as Markdown.
pub fn validate(a: &ValidateArgs) -> Result<()> {
    let store = open(&a.db.db)?;
    let truth = xinyong_app::validate::read_truth(&a.truth)?;
    let cfg = match &a.config {
        Some(p) => ScoringConfig::parse(&std::fs::read_to_string(p)?).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => ScoringConfig::builtin(),
    };
    let rules = rules(a.rules.as_ref())?;
    let t = Instant::now();
    let r = xinyong_app::validate::validate(&*store, &truth, &cfg, &rules)?;
    if let Some(p) = &a.scores {
        let mut w = csv::Writer::from_path(p).with_context(|| format!("writing {}", p.display()))?;
        w.write_record(["uscc", "pd", "score", "grade", "oracle_pd", "default"])?;
        for f in &r.firms {
            w.write_record([
                f.uscc.clone(),
                f.pd.to_string(),
                format!("{:.2}", f.score),
                f.grade.clone(),
                f.oracle_pd.to_string(),
                f.default.to_string(),
            ])?;
        }
        w.flush()?;
    }
    println!(
        "## Out of time: trained on data up to {}, validated on the snapshot {}",
        r.train_cut, r.snapshot
    );
    println!();
    println!("| figure | value |\n|---|---|");
    println!("| model | {} ({} indicators in the card) |", r.model, r.card_features);
    println!("| population (true borrowers, not yet in default) | {} |", r.population);
    println!("| true defaults in the next 12 months | {} |", r.defaults);
    println!("| AUC of the model's PD against true defaults | {:.3} |", r.auc);
    println!("| KS | {:.3} |", r.ks);
    println!("| oracle AUC (the hidden 12-month PD) | {:.3} |", r.oracle_auc);
    println!("| ratio to the oracle (goal >= 0.95) | {:.3} |", r.auc / r.oracle_auc);
    if let Some(b) = &r.bootstrap {
        println!(
            "| 95 % interval, paired bootstrap of the firms ({} resamples): AUC; oracle AUC; ratio | {:.3}–{:.3}; {:.3}–{:.3}; {:.3}–{:.3} |",
            b.reps, b.auc.0, b.auc.1, b.oracle_auc.0, b.oracle_auc.1, b.ratio.0, b.ratio.1
        );
        println!(
            "| share of the resamples with a ratio >= 0.95 | {:.0} % |",
            100.0 * b.ratio_goal_share
        );
    }
    if let Some(p) = r.platform_label_auc {
        println!("| AUC against the platform's own label (90+ days overdue) | {p:.3} |");
    }
    if let Some((from, to, psi)) = &r.psi {
        println!("| PSI of the score between {from} and {to} | {psi:.3} |");
    }
    if let Some((lag, c)) = r.index_lead {
        println!("| district index: lag (months) of best correlation with realised defaults, and the correlation | {lag}, {c:.2} |");
    }
    if let Some(c) = &r.contagion {
        println!();
        println!("## The guarantee network beyond the credit score\n");
        println!(
            "Firms of the population that guarantee others on {}: {} ({} true defaults in the next 12 months).\n",
            r.train_cut, c.guarantors, c.defaults
        );
        println!("| score | AUC among guarantors | AUC over the population |\n|---|---|---|");
        println!("| own PD (credit score) | {:.3} | {:.3} |", c.auc_own, c.auc_own_all);
        println!(
            "| network PD (own PD + contagion through guarantees) | {:.3} | {:.3} |",
            c.auc_network, c.auc_network_all
        );
        println!("| contagion add-on alone | {:.3} | - |", c.auc_addon);
        println!(
            "| logistic regression on logit(own PD), 5-fold cross-validated | {:.3} | - |",
            c.cv_auc_own
        );
        println!(
            "| logistic regression on logit(own PD) and the add-on, 5-fold cross-validated | {:.3} | - |",
            c.cv_auc_with_addon
        );
    }
    println!();
    println!("## Calibration by grade (unadjusted)\n");
    println!("| grade | firms | mean predicted PD | observed default rate |\n|---|---|---|---|");
    for (g, n, p, o) in &r.by_grade {
        println!("| {g} | {n} | {:.2} % | {:.2} % |", p * 100.0, o * 100.0);
    }
    if let Some((n, p, o)) = r.overall_calibration() {
        println!("| all | {n} | {:.2} % | {:.2} % |", p * 100.0, o * 100.0);
    }
    println!();
    println!("## Warnings at the validation date against true defaults in the next 12 months\n");
    println!("| colour | hit rate | false-alarm rate | median lead (months) |\n|---|---|---|---|");
    for (c, h, f, l) in &r.colours {
        println!(
            "| {c} | {:.1} % | {:.1} % | {} |",
            h * 100.0,
            f * 100.0,
            l.map_or("-".into(), |x| format!("{x:.0}"))
        );
    }
    println!();
    println!("| rule | signal | colour | firms flagged | hit rate | false-alarm rate | defaulters flagged within 24 months before | median lead (months) |");
    println!("|---|---|---|---|---|---|---|---|");
    for s in &r.rules {
        println!(
            "| {} | {} | {} | {} | {:.1} % | {:.1} % | {} | {} |",
            s.rule,
            s.name,
            s.colour,
            s.flagged,
            s.hit_rate * 100.0,
            s.false_alarm_rate * 100.0,
            s.defaulters_ever_flagged,
            s.median_lead_months.map_or("-".into(), |x| format!("{x:.0}"))
        );
    }
    println!();
    println!("validated in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}
