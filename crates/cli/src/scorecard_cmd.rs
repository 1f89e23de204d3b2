//! `xinyong scorecard`: fit, evaluate and show points scorecards on any CSV table (docs/scorecard.md).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use xinyong_scorecard::{
    metrics, read_csv, BinKind, Calibration, Column, Feature, FeatureKind, FitConfig, Method, Model, Table,
};

#[derive(Args)]
pub struct ScorecardArgs {
    #[command(subcommand)]
    cmd: ScorecardCmd,
}

#[derive(Subcommand)]
enum ScorecardCmd {
    /// Fit a card on a CSV file and write the model (JSON).
    Fit(FitArgs),
    /// Score a CSV file with a model and print AUC, Gini, KS, PSI and a calibration table; the last line is
    /// `AUC <value>`.
    Eval(EvalArgs),
    /// Print a model's scaling and, per feature, its IV and bins (count, bad rate, WoE, points).
    Show(ShowArgs),
    /// Stratified k-fold cross-validated AUC.
    Cv(CvArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    /// The standard card: coarse monotone bins, WoE, logistic regression.
    Woe,
    /// Boosted shape functions on fine bins (the default).
    Boosted,
}

#[derive(Args)]
struct FitOpts {
    /// The CSV file (header row; empty, NA, NaN, null or ? = missing).
    #[arg(long)]
    csv: PathBuf,
    /// The target column: 0/1 or good/bad (1 = bad).
    #[arg(long)]
    target: String,
    /// An id column to leave out of the features.
    #[arg(long)]
    id: Option<String>,
    /// Overrides the config's method.
    #[arg(long, value_enum)]
    method: Option<MethodArg>,
    /// A FitConfig as TOML or JSON (fields not given keep their defaults).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct FitArgs {
    #[command(flatten)]
    opts: FitOpts,
    /// Where to write the model.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    csv: PathBuf,
    #[arg(long)]
    target: String,
    #[arg(long)]
    id: Option<String>,
    /// Calibration bands (equal counts).
    #[arg(long, default_value_t = 10)]
    bands: usize,
    /// Also write each row's score to this CSV file, in the input's row order: the id (with --id), points,
    /// log-odds of bad and PD.
    #[arg(long)]
    scores: Option<PathBuf>,
}

#[derive(Args)]
struct ShowArgs {
    #[arg(long)]
    model: PathBuf,
}

#[derive(Args)]
struct CvArgs {
    #[command(flatten)]
    opts: FitOpts,
    #[arg(long, default_value_t = 5)]
    folds: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Take the fold of each row from this column (integers 0..folds) instead of drawing stratified folds;
    /// the column is not a feature.
    #[arg(long)]
    fold_column: Option<String>,
}

pub fn run(a: &ScorecardArgs) -> Result<()> {
    match &a.cmd {
        ScorecardCmd::Fit(a) => fit(a),
        ScorecardCmd::Eval(a) => eval(a),
        ScorecardCmd::Show(a) => show(a),
        ScorecardCmd::Cv(a) => cv(a),
    }
}

fn load(path: &Path, target: &str, id: Option<&str>) -> Result<(Table, Vec<u8>)> {
    load_with_ids(path, target, id).map(|(t, y, _)| (t, y))
}

fn load_with_ids(path: &Path, target: &str, id: Option<&str>) -> Result<xinyong_scorecard::CsvData> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    read_csv(BufReader::new(f), target, id).with_context(|| format!("reading {}", path.display()))
}

/// Each row's id (if any), points, log-odds of bad and PD, as CSV.
fn write_scores(path: &Path, ids: Option<&[String]>, scored: &[xinyong_scorecard::Scored]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    let mut head = vec!["points", "log_odds_bad", "pd"];
    if ids.is_some() {
        head.insert(0, "id");
    }
    w.write_record(&head)?;
    for (i, s) in scored.iter().enumerate() {
        let nums = [s.points, s.log_odds_bad, s.pd].map(|x| x.to_string());
        match ids {
            Some(ids) => w.write_record(std::iter::once(ids[i].as_str()).chain(nums.iter().map(String::as_str)))?,
            None => w.write_record(&nums)?,
        }
    }
    w.flush().with_context(|| format!("writing {}", path.display()))
}

fn config(o: &FitOpts) -> Result<FitConfig> {
    let mut cfg = match &o.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            FitConfig::parse(&text).with_context(|| format!("config {}", p.display()))?
        }
        None => FitConfig::default(),
    };
    match o.method {
        Some(MethodArg::Woe) => cfg.method = Method::WoeLogistic,
        Some(MethodArg::Boosted) => cfg.method = Method::BoostedAdditive,
        None => {}
    }
    Ok(cfg)
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::WoeLogistic => "woe (WoE + logistic regression)",
        Method::BoostedAdditive => "boosted (boosted additive shape functions)",
    }
}

fn fit(a: &FitArgs) -> Result<()> {
    let cfg = config(&a.opts)?;
    let (table, y) = load(&a.opts.csv, &a.opts.target, a.opts.id.as_deref())?;
    let start = Instant::now();
    let model = xinyong_scorecard::fit(&table, &y, &cfg).context("fitting the card")?;
    let secs = start.elapsed().as_secs_f64();
    std::fs::write(&a.out, model.to_json()).with_context(|| format!("writing {}", a.out.display()))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let t = &model.training;
    writeln!(out, "method      {}", method_name(model.method))?;
    writeln!(
        out,
        "rows        {} ({} bad, {:.2}%), {} candidate columns",
        t.rows,
        t.bads,
        100.0 * t.bads as f64 / t.rows as f64,
        table.names.len() - cfg.exclude.iter().filter(|e| table.column(e).is_some()).count()
    )?;
    let with_rows = |f: &Feature| f.bins.iter().filter(|b| b.count > 0).count();
    let (pairs, mains): (Vec<&Feature>, Vec<&Feature>) =
        model.features.iter().partition(|f| f.kind == FeatureKind::Pair);
    writeln!(
        out,
        "features    {} kept ({} bins with rows), {} dropped",
        mains.len(),
        mains.iter().map(|f| with_rows(f)).sum::<usize>(),
        t.dropped.len()
    )?;
    for f in &mains {
        writeln!(out, "  {:<40} IV {:>7.4}  {:>3} bins", f.name, f.iv, with_rows(f))?;
    }
    if !pairs.is_empty() {
        writeln!(
            out,
            "pairs       {} ({} cells with rows)",
            pairs.len(),
            pairs.iter().map(|f| with_rows(f)).sum::<usize>()
        )?;
        for f in &pairs {
            writeln!(out, "  {:<40} {:>3} cells", f.name, with_rows(f))?;
        }
    }
    for d in &t.dropped {
        writeln!(out, "  dropped {:<32} {}", d.name, d.reason)?;
    }
    if !t.rounds.is_empty() {
        writeln!(out, "rounds      {:?} (per bag, early stopping)", t.rounds)?;
    }
    writeln!(out, "train AUC   {:.4}  KS {:.4}", t.auc, t.ks)?;
    writeln!(out, "fit time    {secs:.2} s")?;
    writeln!(out, "model       {}", a.out.display())?;
    out.flush()?;
    Ok(())
}

fn read_model(path: &Path) -> Result<Model> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Model::from_json(&text).with_context(|| format!("model {}", path.display()))
}

fn eval(a: &EvalArgs) -> Result<()> {
    let model = read_model(&a.model)?;
    let (table, y, ids) = load_with_ids(&a.csv, &a.target, a.id.as_deref())?;
    let scored = model.score_table(&table).context("scoring")?;
    if let Some(p) = &a.scores {
        write_scores(p, ids.as_deref(), &scored)?;
    }
    let points: Vec<f64> = scored.iter().map(|s| s.points).collect();
    let risk: Vec<f64> = points.iter().map(|p| -p).collect();
    let pd: Vec<f64> = scored.iter().map(|s| s.pd).collect();
    let auc = metrics::auc(&risk, &y);
    let bads = y.iter().filter(|&&v| v == 1).count();
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "rows        {} ({} bad)", y.len(), bads)?;
    writeln!(out, "Gini        {:.4}", metrics::gini(auc))?;
    writeln!(out, "KS          {:.4}", metrics::ks(&risk, &y))?;
    if !model.training.score_edges.is_empty() {
        let expected = vec![1.0 / (model.training.score_edges.len() + 1) as f64; model.training.score_edges.len() + 1];
        let psi = metrics::psi_shares(&expected, &metrics::shares(&model.training.score_edges, &points));
        writeln!(out, "PSI         {psi:.4} (points, against the training deciles)")?;
    }
    writeln!(
        out,
        "mean PD     {:.4} predicted, {:.4} observed",
        pd.iter().sum::<f64>() / pd.len().max(1) as f64,
        bads as f64 / y.len().max(1) as f64
    )?;
    writeln!(out, "calibration by PD band:")?;
    writeln!(
        out,
        "  {:>9} {:>9} {:>7} {:>10} {:>10}",
        "PD from", "PD to", "rows", "predicted", "observed"
    )?;
    for b in metrics::calibration_table(&pd, &y, a.bands) {
        writeln!(
            out,
            "  {:>9.5} {:>9.5} {:>7} {:>10.5} {:>10.5}",
            b.lo, b.hi, b.count, b.predicted, b.observed
        )?;
    }
    writeln!(out, "AUC {auc:.6}")?;
    out.flush()?;
    Ok(())
}

fn show(a: &ShowArgs) -> Result<()> {
    let m = read_model(&a.model)?;
    let s = &m.scaling;
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "method      {}", method_name(m.method))?;
    writeln!(
        out,
        "scaling     {} points at odds {}:1 (good:bad), {} points to double the odds; Factor {:.4}, Offset {:.3}",
        s.points0,
        s.odds0,
        s.pdo,
        s.factor(),
        s.offset()
    )?;
    writeln!(
        out,
        "intercept   {:.6} on ln(odds_good); base points {:.3}, split evenly: {:.3} per feature",
        m.intercept,
        m.base_points(),
        m.base_points() / m.features.len().max(1) as f64
    )?;
    match m.calibration {
        Calibration::None => writeln!(out, "PD          σ(log-odds of bad)")?,
        Calibration::Platt { a, b } => writeln!(out, "PD          σ({a:.4} + {b:.4}·log-odds of bad) (Platt)")?,
    }
    writeln!(
        out,
        "trained on  {} rows, {} bad; train AUC {:.4}",
        m.training.rows, m.training.bads, m.training.auc
    )?;
    for f in &m.features {
        writeln!(out)?;
        if f.kind == FeatureKind::Pair {
            show_pair(&mut out, f)?;
            continue;
        }
        writeln!(
            out,
            "{}  IV {:.4}  coefficient {:.4}  {} bins",
            f.name,
            f.iv,
            f.coefficient,
            f.bins.len()
        )?;
        writeln!(
            out,
            "  {:<44} {:>7} {:>9} {:>8} {:>9}",
            "bin", "count", "bad rate", "WoE", "points"
        )?;
        for b in &f.bins {
            let rate = if b.count > 0 {
                format!("{:.4}", b.bads as f64 / b.count as f64)
            } else {
                "-".into()
            };
            let mut label = b.label.clone();
            if label.chars().count() > 44 {
                label = label.chars().take(41).collect::<String>() + "...";
            }
            if matches!(b.kind, BinKind::Other | BinKind::Missing) && b.count == 0 {
                label.push_str(" (none in training)");
            }
            writeln!(
                out,
                "  {label:<44} {:>7} {rate:>9} {:>8.4} {:>9.2}",
                b.count, b.woe, b.points
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A pair feature as a grid: rows are the first column's bins, columns the second's; cells hold points (`-` for
/// cells without training rows, which score the feature's neutral share).
fn show_pair(out: &mut impl Write, f: &Feature) -> Result<()> {
    let (a, b) = (&f.axes[0], &f.axes[1]);
    writeln!(out, "{}  (pair)  IV {:.4}  {} cells", f.name, f.iv, f.bins.len())?;
    writeln!(out, "  rows: {}; columns: {}; cells: points", a.name, b.name)?;
    let (na, nb) = (a.bins.len(), b.bins.len());
    let cell = |i: usize, j: usize| &f.bins[i * nb + j];
    // Only the bins with training rows.
    let rows: Vec<usize> = (0..na).filter(|&i| (0..nb).any(|j| cell(i, j).count > 0)).collect();
    let cols: Vec<usize> = (0..nb).filter(|&j| (0..na).any(|i| cell(i, j).count > 0)).collect();
    write!(out, "  {:<24}", "")?;
    for j in &cols {
        write!(out, " {:>8}", format!("c{j}"))?;
    }
    writeln!(out)?;
    for &i in &rows {
        let mut label = a.bins[i].label.clone();
        if label.chars().count() > 24 {
            label = label.chars().take(21).collect::<String>() + "...";
        }
        write!(out, "  {label:<24}")?;
        for &j in &cols {
            let c = cell(i, j);
            if c.count > 0 {
                write!(out, " {:>8.2}", c.points)?;
            } else {
                write!(out, " {:>8}", "-")?;
            }
        }
        writeln!(out)?;
    }
    for &j in &cols {
        writeln!(out, "  c{j} = {}", b.bins[j].label)?;
    }
    Ok(())
}

fn cv(a: &CvArgs) -> Result<()> {
    let cfg = config(&a.opts)?;
    let (mut table, y) = load(&a.opts.csv, &a.opts.target, a.opts.id.as_deref())?;
    let k = a.folds;
    if k < 2 {
        bail!("--folds must be at least 2");
    }
    let folds: Vec<usize> = match &a.fold_column {
        Some(name) => {
            let col = table
                .take_column(name)
                .with_context(|| format!("fold column `{name}` not found"))?;
            let Column::Numeric(v) = col else {
                bail!("fold column `{name}` must hold integers 0..{k}");
            };
            v.iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Some(x) if x.fract() == 0.0 && *x >= 0.0 && (*x as usize) < k => Ok(*x as usize),
                    _ => bail!(
                        "row {}: fold column `{name}` is {x:?}; expected an integer 0..{k}",
                        i + 1
                    ),
                })
                .collect::<Result<_>>()?
        }
        None => xinyong_scorecard::stratified_folds(&y, k, a.seed),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "method {}; {} rows, {} folds", method_name(cfg.method), y.len(), k)?;
    let mut aucs = Vec::new();
    let start = Instant::now();
    for f in 0..k {
        let train: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != f).collect();
        let test: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
        let ty: Vec<u8> = train.iter().map(|&i| y[i]).collect();
        let sy: Vec<u8> = test.iter().map(|&i| y[i]).collect();
        let m = xinyong_scorecard::fit(&table.select_rows(&train), &ty, &cfg)
            .with_context(|| format!("fitting fold {f}"))?;
        let risk: Vec<f64> = m
            .score_table(&table.select_rows(&test))?
            .iter()
            .map(|s| -s.points)
            .collect();
        let auc = metrics::auc(&risk, &sy);
        writeln!(
            out,
            "fold {f}: train {} rows, test {} rows ({} bad), {} features, AUC {auc:.4}",
            train.len(),
            test.len(),
            sy.iter().filter(|&&v| v == 1).count(),
            m.features.len()
        )?;
        out.flush()?;
        aucs.push(auc);
    }
    let mean = aucs.iter().sum::<f64>() / k as f64;
    let sd = (aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (k - 1) as f64).sqrt();
    writeln!(out, "time {:.2} s", start.elapsed().as_secs_f64())?;
    writeln!(out, "mean AUC {mean:.4} (sd {sd:.4})")?;
    writeln!(out, "AUC {mean:.6}")?;
    out.flush()?;
    Ok(())
}
