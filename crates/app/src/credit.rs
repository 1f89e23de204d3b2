//! Scoring orchestration: load the facts known by a date from the store, train or load the model, recompute
//! (crates/credit, pure), and store the run with its model version and data cut-off.

use std::collections::BTreeMap;
use xinyong_credit::data::{self, FirmData, Names, RawFact};
use xinyong_credit::live::LiveState;
use xinyong_credit::run::{self, RunOutput};
use xinyong_credit::score::{self, CreditModel, FirmScore, ScoringConfig};
use xinyong_credit::warnings::Rule;
use xinyong_store::{EventRow, ScoreRow, ScoreRun, Store, StoreError, WarningRow};

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("date {0:?}: expected YYYY-MM-DD")]
    Date(String),
    #[error("training: {0}")]
    Train(#[from] score::TrainError),
    #[error("model: {0}")]
    Model(String),
    #[error("no firms in the store known by {0}")]
    NoFirms(String),
}

/// What the loader read.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub firms: Vec<FirmData>,
    pub facts: u64,
    /// Facts that could not be read, by reason (counted, never silently dropped).
    pub skipped: BTreeMap<&'static str, u64>,
}

/// Loads every fact version known by `known_by` into per-firm records; links guarantees to guarantors.
/// Only firms with a registration record are scored; facts of firms without one (outside the district) still
/// feed the guarantee links.
pub fn load(store: &dyn Store, known_by: &str) -> Result<Loaded, ScoreError> {
    let mut out = Loaded::default();
    let mut names = Names::default();
    // Facts come in id order (a sequential read); firms are gathered by USCC.
    let mut pos: rustc_hash::FxHashMap<String, usize> = Default::default();
    let mut all: Vec<FirmData> = Vec::new();
    store.scan_facts(known_by, &mut |f| {
        out.facts += 1;
        let i = match pos.get(f.uscc.as_str()) {
            Some(&i) => i,
            None => {
                pos.insert(f.uscc.clone(), all.len());
                all.push(FirmData::new(&f.uscc));
                all.len() - 1
            }
        };
        let raw = to_raw(f);
        if let Err(e) = all[i].add(&raw, &mut names) {
            *out.skipped.entry(e.reason).or_default() += 1;
        }
        Ok(())
    })?;
    all.sort_by(|a, b| a.uscc.cmp(&b.uscc));
    run::link_guarantees(&mut all);
    for f in &mut all {
        f.finish();
    }
    all.retain(|f| !f.registrations.is_empty());
    out.firms = all;
    Ok(out)
}

/// The store's row as the credit models' input (the same columns; the crates may not depend on each other).
fn to_raw(f: xinyong_store::ScanFact) -> RawFact {
    RawFact {
        fact_id: f.fact_id,
        uscc: f.uscc,
        source: f.source,
        dataset: f.dataset,
        period: f.period,
        event_date: f.event_date,
        end_date: f.end_date,
        fields: f.fields,
        known_from: f.known_from,
        known_to: f.known_to,
    }
}

pub fn parse_day(s: &str) -> Result<data::Day, ScoreError> {
    data::day(s).ok_or_else(|| ScoreError::Date(s.to_string()))
}

/// How `score_district` gets its model.
pub enum ModelChoice {
    /// The latest stored model, else train one.
    LatestOrTrain,
    /// Train a new model on data known by the as-of date.
    Train,
    /// A model artefact (JSON text).
    Given(String),
}

pub struct ScoreOptions<'a> {
    pub as_of: &'a str,
    pub model: ModelChoice,
    pub config: ScoringConfig,
    pub rules: Vec<Rule>,
    /// The wall clock of the run (recorded, never used in results).
    pub now: String,
}

pub struct ScoreSummary {
    pub output: RunOutput,
    pub model: CreditModel,
    pub trained: bool,
    pub loaded_facts: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub run_id: String,
    /// Seconds spent loading facts, training (0 when the model was given), computing, and storing.
    pub timings: [f64; 4],
}

/// Trains a model on data known by `cut`, validating out of time on the last complete snapshot.
pub fn train(firms: &[FirmData], cut: data::Day, cfg: &ScoringConfig) -> Result<CreditModel, ScoreError> {
    // Hold out the latest snapshot with a complete outcome window; train on the ones before it.
    let last = data::last_complete_month(cut) - cfg.horizon_months - score::label_lag(cfg);
    // The development model's labels must close before the held-out snapshot: its cut-off is that month's end.
    let holdout_cut = data::month_end(last);
    let dev = score::train(firms, holdout_cut, cut, cfg);
    let validation = dev.ok().and_then(|m| score::validate(&m, firms, last, cut));
    let model = score::train(firms, cut, cut, cfg)?;
    Ok(model.with_validation(validation))
}

/// The training rows a model trained on data known by `cut` would use, as CSV (uscc, snapshot, the indicators,
/// `default_12m`): for analysts (`xinyong scorecard` takes it as is) and for benchmarks.
pub fn training_csv(store: &dyn Store, cut: &str, cfg: &ScoringConfig) -> Result<String, ScoreError> {
    let t = parse_day(cut)?;
    let firms = load(store, cut)?.firms;
    let first = firms
        .iter()
        .flat_map(|f| f.loans.iter().map(|l| l.month))
        .min()
        .unwrap_or(data::last_complete_month(t));
    let months = score::snapshot_months(first, t, cfg);
    let set = score::training_set(&firms, &months, t, cfg);
    let mut out = String::from("uscc,snapshot,");
    out.push_str(&set.table.names.join(","));
    out.push_str(",default_12m\n");
    for (r, (fi, m)) in set.keys.iter().enumerate() {
        out.push_str(&firms[*fi].uscc);
        out.push(',');
        out.push_str(&data::month_str(*m));
        for c in &set.table.columns {
            out.push(',');
            if let xinyong_scorecard::Column::Numeric(v) = c {
                if let Some(x) = v[r] {
                    out.push_str(&format!("{x}"));
                }
            }
        }
        out.push_str(&format!(",{}\n", set.target[r]));
    }
    Ok(out)
}

/// A firm's indicators and card points: (USCC, indicators in catalogue order, points).
pub type CoreRow = (String, Vec<Option<f64>>, f64);

/// The scoring core alone, for benchmarks: every firm's indicators as of `as_of` and its card points, with
/// the seconds spent loading and computing. Writes nothing.
pub fn core(store: &dyn Store, as_of: &str, model: &CreditModel) -> Result<(Vec<CoreRow>, f64, f64), ScoreError> {
    use rayon::prelude::*;
    let t = parse_day(as_of)?;
    let clock = std::time::Instant::now();
    let firms = load(store, as_of)?.firms;
    let t_load = clock.elapsed().as_secs_f64();
    let pos: Vec<usize> = model
        .card
        .features
        .iter()
        .map(|f| xinyong_credit::features::position(&f.name).unwrap_or(0))
        .collect();
    let out: Vec<CoreRow> = firms
        .par_iter()
        .filter(|f| run::in_scope(f, t, t))
        .map(|f| {
            let row = xinyong_credit::features::compute(f, t);
            let vals: Vec<xinyong_scorecard::Value> = pos
                .iter()
                .map(|&i| row.values[i].map_or(xinyong_scorecard::Value::Missing, xinyong_scorecard::Value::Num))
                .collect();
            let points = model.card.score_values(&vals).points;
            (f.uscc.clone(), row.values, points)
        })
        .collect();
    Ok((out, t_load, clock.elapsed().as_secs_f64() - t_load))
}

/// The full recompute for the district as of a date, stored as a run.
pub fn score_district(store: &mut dyn Store, opt: ScoreOptions) -> Result<ScoreSummary, ScoreError> {
    let t = parse_day(opt.as_of)?;
    let clock = std::time::Instant::now();
    let loaded = load(store, opt.as_of)?;
    let t_load = clock.elapsed().as_secs_f64();
    if loaded.firms.is_empty() {
        return Err(ScoreError::NoFirms(opt.as_of.to_string()));
    }
    let (model, trained) = match opt.model {
        ModelChoice::Given(json) => (CreditModel::from_json(&json).map_err(ScoreError::Model)?, false),
        ModelChoice::Train => (train(&loaded.firms, t, &opt.config)?, true),
        ModelChoice::LatestOrTrain => match latest_model(store)? {
            Some((_, json)) => (CreditModel::from_json(&json).map_err(ScoreError::Model)?, false),
            None => (train(&loaded.firms, t, &opt.config)?, true),
        },
    };
    let t_train = clock.elapsed().as_secs_f64() - t_load;
    store.put_model(&model.version, &opt.now, &model.to_json())?;
    let output = run::recompute(&loaded.firms, t, &model, &opt.rules);
    let t_compute = clock.elapsed().as_secs_f64() - t_load - t_train;
    let run_id = format!("{}/{}", output.as_of, model.version);
    store.put_run(&to_record(&output, &run_id, &opt.now))?;
    let t_store = clock.elapsed().as_secs_f64() - t_load - t_train - t_compute;
    Ok(ScoreSummary {
        output,
        model,
        trained,
        loaded_facts: loaded.facts,
        skipped: loaded.skipped,
        run_id,
        timings: [t_load, t_train, t_compute, t_store],
    })
}

/// The model of the latest stored run, else the latest stored model.
pub fn latest_model(store: &dyn Store) -> Result<Option<(String, String)>, ScoreError> {
    if let Some(run) = store.runs()?.first() {
        if let Some(m) = store.model(Some(&run.model_version))? {
            return Ok(Some(m));
        }
    }
    Ok(store.model(None)?)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The store's row form of a run.
pub fn to_record(o: &RunOutput, run_id: &str, now: &str) -> ScoreRun {
    let colour = |c: Option<xinyong_credit::warnings::Colour>| c.map(|c| c.key().to_string());
    ScoreRun {
        run_id: run_id.to_string(),
        as_of: o.as_of.clone(),
        model_version: o.model_version.clone(),
        created_at: now.to_string(),
        benchmarks: json(&o.benchmarks),
        scores: o
            .scores
            .iter()
            .map(|s| ScoreRow {
                uscc: s.uscc.clone(),
                score: s.score,
                pd: s.pd,
                grade: s.grade.clone(),
                grade_unadjusted: s.grade_unadjusted.clone(),
                colour: colour(s.colour),
                detail: json(s),
            })
            .collect(),
        warnings: o
            .scores
            .iter()
            .flat_map(|s| {
                s.warnings.iter().map(|w| WarningRow {
                    uscc: s.uscc.clone(),
                    rule: w.rule,
                    colour: w.colour.key().to_string(),
                    since: w.since.clone(),
                    clears_on: w.clears_on.clone(),
                    evidence: json(&w.evidence),
                })
            })
            .collect(),
        spans: o
            .warning_spans
            .iter()
            .map(|s| {
                (
                    s.uscc.clone(),
                    s.rule,
                    s.colour.key().to_string(),
                    s.start.clone(),
                    s.end.clone(),
                )
            })
            .collect(),
        events: o
            .events
            .iter()
            .map(|e| EventRow {
                id: e.id.clone(),
                uscc: e.uscc.clone(),
                date: e.date.clone(),
                kind: e.kind.clone(),
                rule: e.rule,
                before: e.before.clone(),
                after: e.after.clone(),
            })
            .collect(),
        history: o
            .history
            .iter()
            .map(|h| {
                (
                    h.uscc.clone(),
                    h.month.clone(),
                    h.pd,
                    h.score,
                    h.grade.clone(),
                    colour(h.colour),
                )
            })
            .collect(),
        index: o
            .index
            .iter()
            .map(|p| (p.month.clone(), p.dimension.clone(), p.member.clone(), p.value, json(p)))
            .collect(),
        movers: o
            .movers
            .iter()
            .map(|m| {
                (
                    m.month.clone(),
                    m.dimension.clone(),
                    m.member.clone(),
                    m.uscc.clone(),
                    m.delta,
                )
            })
            .collect(),
        circles: o
            .circles
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.metrics.size as u64,
                    c.metrics.in_circles as u64,
                    c.metrics.total_amount,
                    json(c),
                )
            })
            .collect(),
    }
}

/// The incremental recompute: scores the given firms alone as of a date with the stored model and the
/// benchmarks of the latest stored run, without rewriting the run.
pub fn score_firms(
    store: &dyn Store,
    usccs: &[String],
    as_of: &str,
    rules: &[Rule],
) -> Result<Vec<FirmScore>, ScoreError> {
    let scorer = Scorer::open(store, rules.to_vec())?;
    usccs.iter().map(|u| scorer.score(store, u, as_of)).collect()
}

/// The model, benchmarks and rules held in memory, to score single firms as their facts change.
pub struct Scorer {
    pub model: CreditModel,
    pub benchmarks: xinyong_credit::bench::Benchmarks,
    pub rules: Vec<Rule>,
    /// The run the benchmarks and each firm's place in the guarantee network come from, and its date.
    pub run_id: String,
    pub run_as_of: String,
}

impl Scorer {
    /// The latest run's (by date) model and benchmarks.
    pub fn open(store: &dyn Store, rules: Vec<Rule>) -> Result<Scorer, ScoreError> {
        let (_, mjson) = latest_model(store)?
            .ok_or_else(|| ScoreError::Model("no stored model: run `xinyong score` first".into()))?;
        let model = CreditModel::from_json(&mjson).map_err(ScoreError::Model)?;
        let run = store
            .runs()?
            .into_iter()
            .max_by(|a, b| a.as_of.cmp(&b.as_of))
            .ok_or_else(|| ScoreError::Model("no stored run".into()))?;
        let benchmarks =
            serde_json::from_str(&store.run_benchmarks(&run.run_id)?).map_err(|e| ScoreError::Model(e.to_string()))?;
        Ok(Scorer {
            model,
            benchmarks,
            rules,
            run_id: run.run_id,
            run_as_of: run.as_of,
        })
    }

    /// One firm: its facts from the store, then indicators, warnings and score.
    pub fn score(&self, store: &dyn Store, uscc: &str, as_of: &str) -> Result<FirmScore, ScoreError> {
        // The guarantee network is a whole-district computation: the firm's place in it comes from the run,
        // and only for the run's own date (another date would mix in what was known then, or later); on other
        // dates the score carries no network context (`network: None`) and no network warnings.
        self.score_with(store, uscc, as_of, as_of == self.run_as_of)
    }

    /// The live recompute after new records (the real-time path): the firm's own facts as known on `as_of`,
    /// and its place in the guarantee network as the latest full run found it (contagion is recomputed by the
    /// next full run), so that a rescore changes only what the new records change.
    pub fn score_live(&self, store: &dyn Store, uscc: &str, as_of: &str) -> Result<FirmScore, ScoreError> {
        self.score_with(store, uscc, as_of, true)
    }

    fn score_with(&self, store: &dyn Store, uscc: &str, as_of: &str, network: bool) -> Result<FirmScore, ScoreError> {
        let t = parse_day(as_of)?;
        let firm = load_one(store, uscc, as_of)?;
        let stored = if network {
            store.run_score(&self.run_id, uscc)?
        } else {
            None
        };
        let net = match stored {
            Some(j) => {
                serde_json::from_str::<FirmScore>(&j)
                    .map_err(|e| ScoreError::Model(e.to_string()))?
                    .network
            }
            None => None,
        };
        Ok(run::assess_one(
            &firm,
            t,
            &self.model,
            &self.rules,
            &self.benchmarks,
            net.as_ref(),
        ))
    }
}

/// Rescoring for the live path: firms' new live states as of a date (the web platform's push API calls it).
pub type LiveRescorer = std::sync::Arc<
    dyn Fn(&dyn Store, &[String], &str) -> Result<Vec<(String, Option<LiveState>)>, String> + Send + Sync,
>;

/// The live path's rescoring: the latest run's model and benchmarks (reloaded when a new run is stored), each
/// firm's own facts as known on the date, its place in the guarantee network as the run found it.
pub fn live_rescorer() -> LiveRescorer {
    type Held = Option<(String, std::sync::Arc<Scorer>)>;
    let held: std::sync::Arc<std::sync::Mutex<Held>> = Default::default();
    std::sync::Arc::new(move |store, firms, as_of| {
        let latest = store
            .runs()
            .map_err(|e| e.to_string())?
            .into_iter()
            .max_by(|a, b| a.as_of.cmp(&b.as_of))
            .map(|r| r.run_id)
            .ok_or("no scoring run stored yet: run `xinyong score` first")?;
        let scorer = {
            let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
            match h.as_ref() {
                Some((id, s)) if *id == latest => s.clone(),
                _ => {
                    let s = std::sync::Arc::new(
                        Scorer::open(store, xinyong_credit::warnings::builtin_rules()).map_err(|e| e.to_string())?,
                    );
                    *h = Some((latest, s.clone()));
                    s
                }
            }
        };
        firms
            .iter()
            .map(|u| {
                let s = scorer
                    .score_live(store, u, as_of)
                    .map_err(|e| format!("rescoring {u}: {e}"))?;
                Ok((u.clone(), Some(LiveState::of(&s))))
            })
            .collect()
    })
}

/// One firm's facts as current on a date, and the guarantees it gave (stored under the borrowers).
pub fn load_one(store: &dyn Store, uscc: &str, known_by: &str) -> Result<FirmData, ScoreError> {
    let mut names = Names::default();
    let mut f = FirmData::new(uscc);
    parse_day(known_by)?;
    // facts_of gives the versions current on a date; the indicators look back up to 60 months, and versions
    // replaced before `known_by` do not change what is known on it, so the current-on-date view suffices.
    for s in store.facts_of(uscc, Some(known_by))? {
        // A stored fact's event dates are in its fields too (FirmData::add reads them from there).
        let raw = RawFact {
            fact_id: s.fact_id,
            uscc: s.uscc,
            source: s.source,
            dataset: s.dataset,
            period: s.period,
            event_date: None,
            end_date: None,
            fields: s.fields,
            known_from: s.known_from,
            known_to: s.known_to,
        };
        let _ = f.add(&raw, &mut names);
    }
    for g in store.guarantees_given(uscc, known_by)? {
        let mut b = FirmData::new(&g.uscc);
        let raw = to_raw(g);
        if b.add(&raw, &mut names).is_ok() {
            f.guarantees_given.append(&mut b.guarantees_received);
            f.provenance.append(&mut b.provenance);
        }
    }
    f.finish();
    Ok(f)
}
