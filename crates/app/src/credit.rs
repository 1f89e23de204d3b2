//! Scoring orchestration: load the facts known by a date from the store, train or load the model, recompute
//! (crates/credit, pure), and store the run with its model version and data cut-off.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use xinyong_credit::data::{self, FirmData, Names, RawFact};
use xinyong_credit::live::{LiveGroup, LiveState, Member, Own, Rescored};
use xinyong_credit::network::{GroupView, NetFirm};
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
    pub skipped: BTreeMap<String, u64>,
    /// Whether the records came from the store's cache of them (crate::fact_cache).
    pub cache: crate::fact_cache::CacheUse,
}

/// Loads every fact version known by `known_by` into per-firm records; links guarantees to guarantors.
/// Only firms with a registration record are scored; facts of firms without one (outside the district) still
/// feed the guarantee links.
///
/// As of the data cut-off (what a recompute reads), the records come from the store's cache when it holds
/// them for the current facts, and are cached after reading the facts otherwise (crate::fact_cache).
pub fn load(store: &dyn Store, known_by: &str) -> Result<Loaded, ScoreError> {
    use crate::fact_cache::{self, CacheUse};
    let generation = store.fact_generation()?;
    let key = match generation {
        Some(_) if store.data_cutoff()?.as_deref() == Some(known_by) => fact_cache::key(known_by),
        _ => None,
    };
    let Some((generation, key)) = generation.zip(key) else {
        return load_facts(store, known_by);
    };
    let unreadable = match fact_cache::read(store, &key)? {
        fact_cache::Cached::Hit(l) => return Ok(l),
        fact_cache::Cached::Missing => false,
        fact_cache::Cached::Unreadable => true,
    };
    let mut l = load_facts(store, known_by)?;
    l.cache = match fact_cache::write(store, generation, &key, &l) {
        Ok(true) if unreadable => CacheUse::Replaced,
        Ok(true) => CacheUse::Written,
        Ok(false) => CacheUse::None,
        Err(e) if unreadable => CacheUse::WriteFailed(format!(
            "the cache held did not decode, and writing it anew failed: {e}"
        )),
        Err(e) => CacheUse::WriteFailed(e.to_string()),
    };
    Ok(l)
}

/// [`load`] from the facts themselves.
pub fn load_facts(store: &dyn Store, known_by: &str) -> Result<Loaded, ScoreError> {
    let retention = Retention::on(known_by)?;
    // The store hands out the facts in shares (SQLite: a range of fact ids per thread); each share is read into
    // its own per-firm records, which are then merged. `FirmData::finish` orders every list by fact id, so the
    // records do not depend on how the facts were split.
    let parts = rayon::current_num_threads().clamp(1, 4);
    let mut shares: Vec<Share> = (0..parts).map(|_| Share::default()).collect();
    {
        let mut sinks: Vec<Box<xinyong_store::FactSink<'_>>> = shares
            .iter_mut()
            .map(|share| {
                let retention = &retention;
                Box::new(move |f: xinyong_store::ScanFact| {
                    share.add(f, retention);
                    Ok(())
                }) as Box<xinyong_store::FactSink<'_>>
            })
            .collect();
        let mut refs: Vec<&mut xinyong_store::FactSink<'_>> = sinks.iter_mut().map(|b| &mut **b).collect();
        store.scan_facts_split(known_by, &mut refs)?;
    }
    let mut out = Loaded::default();
    let mut pos: rustc_hash::FxHashMap<String, usize> = Default::default();
    let mut all: Vec<FirmData> = Vec::new();
    for share in shares {
        out.facts += share.facts;
        for (reason, n) in share.skipped {
            *out.skipped.entry(reason.to_string()).or_default() += n;
        }
        for firm in share.firms {
            match pos.get(firm.uscc.as_str()) {
                Some(&i) => all[i].absorb(firm),
                None => {
                    pos.insert(firm.uscc.clone(), all.len());
                    all.push(firm);
                }
            }
        }
    }
    all.sort_by(|a, b| a.uscc.cmp(&b.uscc));
    run::link_guarantees(&mut all);
    all.par_iter_mut().for_each(FirmData::finish);
    all.retain(|f| !f.registrations.is_empty());
    out.firms = all;
    Ok(out)
}

/// The per-firm records built from one share of the facts (see [`load`]).
#[derive(Default)]
struct Share {
    pos: rustc_hash::FxHashMap<String, usize>,
    firms: Vec<FirmData>,
    names: Names,
    facts: u64,
    skipped: BTreeMap<&'static str, u64>,
}

impl Share {
    fn add(&mut self, f: xinyong_store::ScanFact, retention: &Retention) {
        self.facts += 1;
        let i = match self.pos.get(f.uscc.as_str()) {
            Some(&i) => i,
            None => {
                self.pos.insert(f.uscc.clone(), self.firms.len());
                self.firms.push(FirmData::new(&f.uscc));
                self.firms.len() - 1
            }
        };
        if retention.ended(&f.dataset, &f.fields, f.period.as_deref()) {
            *self.skipped.entry(RETENTION_ENDED).or_default() += 1;
            return;
        }
        let raw = to_raw(f);
        if let Err(e) = self.firms[i].add(&raw, &mut self.names) {
            *self.skipped.entry(e.reason).or_default() += 1;
        }
    }
}

/// Why a fact the loader read is not scored: its credit-view retention has ended.
pub const RETENTION_ENDED: &str = "retention ended (negative information, 5 years after the event)";

/// The credit views' retention (rights `windows.toml`, view "credit"): negative information leaves them 5
/// years after the event ends (征信业管理条例 art. 16), so the credit models do not read it after that day.
pub struct Retention {
    rules: &'static RetentionRules,
    on: chrono::NaiveDate,
}

/// The built-in windows and calendar, and what each registered dataset needs, decided once (the loader asks
/// for millions of facts, the live path for every firm it rescores): nothing (no credit window), the period
/// alone (a window counted from it), or the record read.
struct RetentionRules {
    windows: xinyong_rights::Windows,
    calendar: xinyong_rights::Calendar,
    plan: rustc_hash::FxHashMap<String, Plan>,
}

#[derive(Clone, Copy)]
enum Plan {
    Never,
    Period(xinyong_rights::Span),
    Read,
}

fn retention_rules() -> &'static RetentionRules {
    static R: std::sync::OnceLock<RetentionRules> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        use xinyong_rights::View;
        let windows = xinyong_rights::Windows::builtin();
        let datasets: Vec<String> = xinyong_registry::Registry::builtin()
            .map(|r| r.datasets.iter().map(|d| d.id.clone()).collect())
            .unwrap_or_default();
        let plan = datasets
            .into_iter()
            .map(|d| {
                let p = if !windows.concerns(View::Credit, &d) {
                    Plan::Never
                } else if let Some(k) = windows.period_keep(View::Credit, &d) {
                    Plan::Period(k)
                } else {
                    Plan::Read
                };
                (d, p)
            })
            .collect();
        RetentionRules {
            windows,
            calendar: xinyong_rights::Calendar::builtin(),
            plan,
        }
    })
}

impl Retention {
    pub fn on(day: &str) -> Result<Retention, ScoreError> {
        Ok(Retention {
            rules: retention_rules(),
            on: chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| ScoreError::Date(day.to_string()))?,
        })
    }

    /// Whether a fact's retention in the credit views ended before the day.
    pub fn ended(&self, dataset: &str, fields: &str, period: Option<&str>) -> bool {
        use xinyong_rights::View;
        let r = self.rules;
        let plan = match r.plan.get(dataset) {
            Some(p) => *p,
            // A dataset the registry does not name: decided from the windows directly.
            None if r.windows.concerns(View::Credit, dataset) => Plan::Read,
            None => Plan::Never,
        };
        match plan {
            Plan::Never => return false,
            // Monthly records (loan months) are most of the facts: a period recent enough has not ended
            // whatever the record says, and is not read.
            Plan::Period(keep) => {
                if let Some(end) = period.and_then(xinyong_rights::windows::period_end) {
                    if keep.last_day(end, &r.calendar, false) >= self.on {
                        return false;
                    }
                }
            }
            Plan::Read => {}
        }
        let Ok(m) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(fields) else {
            return false;
        };
        r.windows
            .of(View::Credit, dataset, &m, period, None, &r.calendar)
            .and_then(|w| w.last_day)
            .is_some_and(|l| l < self.on)
    }
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
    pub skipped: BTreeMap<String, u64>,
    /// Whether the loader's records came from the store's cache.
    pub cache: crate::fact_cache::CacheUse,
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
/// the seconds spent loading and computing. Writes nothing but the loader's cache (when it missed).
pub fn core(
    store: &dyn Store,
    as_of: &str,
    model: &CreditModel,
) -> Result<(Vec<CoreRow>, f64, f64, crate::fact_cache::CacheUse), ScoreError> {
    let t = parse_day(as_of)?;
    let clock = std::time::Instant::now();
    let loaded = load(store, as_of)?;
    let (firms, cache) = (loaded.firms, loaded.cache);
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
    Ok((out, t_load, clock.elapsed().as_secs_f64() - t_load, cache))
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
        cache: loaded.cache,
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
            .latest_run()?
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
        // Only the stored score's place in the network is needed: the rest of its JSON is skipped, not built.
        #[derive(serde::Deserialize)]
        struct NetworkOnly {
            #[serde(default)]
            network: Option<xinyong_credit::network::NetFirm>,
        }
        let net = match stored {
            Some(j) => {
                serde_json::from_str::<NetworkOnly>(&j)
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

/// Rescoring for the live path (the web platform's push API calls it): `own` rescores the firms whose facts
/// changed, `settle` puts them in the guarantee network and gives every state that changed.
pub type LiveRescorer = xinyong_credit::live::Rescorer<OwnFn, SettleFn>;
/// The firms rescored from their own facts as of a date (valid time), as known on another (known time, not
/// before it): parallel-safe.
pub type OwnFn = dyn Fn(&dyn Store, &[String], &str, &str) -> Result<Vec<Rescored>, String> + Send + Sync;
/// Their guarantee groups: every state that changed, neighbours' included (once per push).
pub type SettleFn = dyn Fn(&dyn Store, Vec<Rescored>, &str) -> Result<Vec<(String, LiveState)>, String> + Send + Sync;

/// What the live path holds between pushes: the latest run's model and benchmarks, and the guarantee groups
/// that pushes have touched (built from the run on first touch).
struct Held {
    run_id: String,
    scorer: std::sync::Arc<Scorer>,
    groups: FxHashMap<String, LiveGroup>,
}

type Shared = std::sync::Arc<std::sync::Mutex<Option<Held>>>;

fn held_for(store: &dyn Store, held: &Shared) -> Result<std::sync::Arc<Scorer>, String> {
    let latest = store
        .latest_run()
        .map_err(|e| e.to_string())?
        .map(|r| r.run_id)
        .ok_or("no scoring run stored yet: run `xinyong score` first")?;
    let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
    match h.as_ref() {
        Some(x) if x.run_id == latest => Ok(x.scorer.clone()),
        _ => {
            let s = std::sync::Arc::new(
                Scorer::open(store, xinyong_credit::warnings::builtin_rules()).map_err(|e| e.to_string())?,
            );
            *h = Some(Held {
                run_id: latest,
                scorer: s.clone(),
                groups: FxHashMap::default(),
            });
            Ok(s)
        }
    }
}

/// Only the network field of a stored score.
#[derive(serde::Deserialize)]
struct NetOnly {
    #[serde(default)]
    network: Option<NetFirm>,
}

/// The live path's rescoring: the latest run's model and benchmarks (reloaded when a new run is stored);
/// each changed firm's own facts as known on the date; then its guarantee group recomputed with the new
/// PDs and colours, so that its neighbours' network warnings (circle, contagion) move with it.
pub fn live_rescorer() -> LiveRescorer {
    let held: Shared = Default::default();
    let h1 = held.clone();
    let own: std::sync::Arc<OwnFn> = std::sync::Arc::new(move |store, firms, as_of, known_by| {
        let scorer = held_for(store, &h1)?;
        let t = parse_day(as_of).map_err(|e| e.to_string())?;
        let k = parse_day(known_by).map_err(|e| e.to_string())?.max(t);
        let known_by = data::day_str(k);
        firms
            .iter()
            .map(|u| {
                let firm =
                    load_one_except(store, u, &known_by, as_of, &[]).map_err(|e| format!("rescoring {u}: {e}"))?;
                let row = xinyong_credit::features::compute_at(&firm, t, k);
                let ws = run::evaluate_warnings(&firm, t, k, &row, &scorer.rules, &scorer.benchmarks, None);
                let first = score::score_firm(
                    &scorer.model,
                    &firm,
                    t,
                    k,
                    row,
                    ws,
                    &scorer.benchmarks,
                    score::Detail::Full,
                );
                let base = match store.run_score(&scorer.run_id, u).map_err(|e| e.to_string())? {
                    Some(j) => serde_json::from_str::<NetOnly>(&j).map_err(|e| e.to_string())?.network,
                    None => None,
                };
                let defaulted =
                    xinyong_credit::network::defaulted_at(&firm, t, k, xinyong_credit::network::DEFAULT_DAYS);
                Ok(Rescored {
                    uscc: u.clone(),
                    first,
                    firm,
                    defaulted,
                    base,
                })
            })
            .collect()
    });
    let settle: std::sync::Arc<SettleFn> = std::sync::Arc::new(move |store, firms, as_of| {
        let scorer = held_for(store, &held)?;
        let t = parse_day(as_of).map_err(|e| e.to_string())?;
        let mut guard = held.lock().unwrap_or_else(|e| e.into_inner());
        let Some(h) = guard.as_mut().filter(|h| h.run_id == scorer.run_id) else {
            return Err("a new scoring run was stored during the push: push again".into());
        };
        settle(store, h, firms, t).map_err(|e| e.to_string())
    });
    xinyong_credit::live::Rescorer { own, settle }
}

/// Checks the live network against the latest run: every guarantee group rebuilt as the live path builds it
/// (from the run's view of it and its members' stored scores) and recomputed must give each member firm the
/// place in the network the run stored, and each firm's state composed from its own part and those network
/// warnings must be the run's. Returns the groups checked and the differences found (none when all agree).
pub fn check_live_network(store: &dyn Store) -> Result<(usize, Vec<String>), ScoreError> {
    let held: Shared = Default::default();
    let scorer = held_for(store, &held).map_err(ScoreError::Model)?;
    let mut guard = held.lock().unwrap_or_else(|e| e.into_inner());
    let h = guard.as_mut().ok_or_else(|| ScoreError::Model("no run".into()))?;
    let t = parse_day(&scorer.run_as_of)?;
    let mut diffs = Vec::new();
    let groups = store.run_circles(&h.run_id, None)?;
    for j in &groups {
        let view: GroupView = serde_json::from_str(j).map_err(|e| ScoreError::Model(e.to_string()))?;
        let Some(mut g) = load_group(store, h, &view.id, false)? else {
            diffs.push(format!("{}: not found", view.id));
            continue;
        };
        let full = g.recompute(&scorer.model.config.network);
        // An update after a member's own part was set (here: to what it was) gives what a full recompute
        // gives, for every member it returns.
        if let Some(first) = full.first().map(|x| x.0.clone()) {
            for (id, nf) in g.update(&[first.as_str()], &scorer.model.config.network) {
                if full.iter().find(|x| x.0 == id).map(|x| &x.1) != Some(&nf) {
                    diffs.push(format!("{id} in {}: the update differs from a full recompute", view.id));
                }
            }
        }
        for (id, nf) in full {
            let Some(j) = store.run_score(&h.run_id, &id)? else {
                continue;
            };
            let s: FirmScore = serde_json::from_str(&j).map_err(|e| ScoreError::Model(e.to_string()))?;
            let run_nf = s.network.clone().unwrap_or_default();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9;
            if !close(nf.pd_network, run_nf.pd_network)
                || !close(nf.contagion, run_nf.contagion)
                || nf.circle_red != run_nf.circle_red
                || nf.neighbours_red != run_nf.neighbours_red
                || nf.path_contracts.len() != run_nf.path_contracts.len()
            {
                diffs.push(format!(
                    "{id} in {}: live pd {} contagion {} red {:?}/{:?}; run pd {} contagion {} red {:?}/{:?}",
                    view.id,
                    nf.pd_network,
                    nf.contagion,
                    nf.circle_red,
                    nf.neighbours_red,
                    run_nf.pd_network,
                    run_nf.contagion,
                    run_nf.circle_red,
                    run_nf.neighbours_red
                ));
            }
            let own = g.own_of(&id).cloned().unwrap_or_default();
            let network = if scorer
                .rules
                .iter()
                .filter(|r| r.uses_network())
                .all(|r| r.network_only())
            {
                xinyong_credit::live::network_warnings(&scorer.rules, &nf, t, &id)
            } else {
                LiveState::of(&s).network_part(&scorer.rules)
            };
            let mut composed = LiveState::compose(&own, &network, &scorer.model.config);
            composed.own = None;
            if composed != LiveState::of(&s) {
                diffs.push(format!("{id}: composed {composed:?}, run {:?}", LiveState::of(&s)));
            }
        }
    }
    Ok((groups.len(), diffs))
}

/// A stored live state of a firm (`firm_state`), if any.
fn stored_state(store: &dyn Store, uscc: &str) -> Result<Option<LiveState>, ScoreError> {
    let rows = store
        .rows(&xinyong_store::rows::RowQuery::all("firm_state").eq("uscc", xinyong_store::rows::Value::text(uscc)))?;
    Ok(rows
        .first()
        .and_then(|r| serde_json::from_str(r[1].as_str().unwrap_or("")).ok()))
}

/// A guarantee group of the held run, built from the run's view of it and each member's state: now (`live`:
/// its live state where it has one), or as the run left it.
fn load_group(store: &dyn Store, h: &Held, gid: &str, live: bool) -> Result<Option<LiveGroup>, ScoreError> {
    let Some(j) = store.run_circles(&h.run_id, Some(gid))?.into_iter().next() else {
        return Ok(None);
    };
    let view: GroupView = serde_json::from_str(&j).map_err(|e| ScoreError::Model(e.to_string()))?;
    let rules = &h.scorer.rules;
    let mut members = Vec::with_capacity(view.members.len());
    for (i, id) in view.members.iter().enumerate() {
        let stored = store.run_score(&h.run_id, id)?;
        let score = match stored {
            Some(j) => Some(serde_json::from_str::<FirmScore>(&j).map_err(|e| ScoreError::Model(e.to_string()))?),
            None => None,
        };
        let equity = match view.equity.get(i) {
            Some(e) => *e,
            None => score.as_ref().and_then(xinyong_credit::network::equity_of),
        };
        let firm = match score {
            Some(s) => {
                let base = s.network.clone().unwrap_or_default();
                let run_state = LiveState::of(&s);
                let live = if live { stored_state(store, id)? } else { None };
                let own = live
                    .as_ref()
                    .and_then(|l| l.own.clone())
                    .unwrap_or_else(|| Own::of(&s, rules, base.pd_self >= 1.0 && s.pd < 1.0));
                let told = live.as_ref().unwrap_or(&run_state).network_part(rules);
                Some((base, own, told))
            }
            None => None,
        };
        members.push(Member {
            id: id.clone(),
            equity,
            firm,
        });
    }
    Ok(Some(LiveGroup::new(&view, members, &h.scorer.model.config.network)))
}

/// The network step of a push: the changed firms' own parts set in their groups, the groups recomputed, and
/// the states of the changed firms and of every neighbour whose network warnings moved.
fn settle(
    store: &dyn Store,
    h: &mut Held,
    firms: Vec<Rescored>,
    t: data::Day,
) -> Result<Vec<(String, LiveState)>, ScoreError> {
    let scorer = h.scorer.clone();
    let (rules, cfg) = (&scorer.rules, &scorer.model.config);
    // Each touched group, with its changed firms.
    let mut dirty: Vec<(String, Vec<&str>)> = Vec::new();
    for r in &firms {
        let Some(gid) = r.base.as_ref().and_then(|b| b.group.clone()) else {
            continue;
        };
        if !h.groups.contains_key(&gid) {
            if let Some(g) = load_group(store, h, &gid, true)? {
                h.groups.insert(gid.clone(), g);
            }
        }
        if let Some(g) = h.groups.get_mut(&gid) {
            if g.set_own(&r.uscc, Own::of(&r.first, rules, r.defaulted)) {
                match dirty.iter_mut().find(|d| d.0 == gid) {
                    Some(d) => d.1.push(r.uscc.as_str()),
                    None => dirty.push((gid, vec![r.uscc.as_str()])),
                }
            }
        }
    }
    let mut nets: FxHashMap<String, (String, NetFirm)> = FxHashMap::default();
    for (gid, changed) in &dirty {
        if let Some(g) = h.groups.get_mut(gid) {
            for (id, nf) in g.update(changed, &cfg.network) {
                nets.insert(id, (gid.clone(), nf));
            }
        }
    }
    let mut out = Vec::new();
    let changed: rustc_hash::FxHashSet<&str> = firms.iter().map(|r| r.uscc.as_str()).collect();
    // The changed firms: their network rules read with their facts.
    for r in &firms {
        let own = Own::of(&r.first, rules, r.defaulted);
        let nf = nets.get(&r.uscc).map(|x| x.1.clone()).or_else(|| r.base.clone());
        let network = match &nf {
            Some(nf) => xinyong_credit::live::colours(&run::evaluate_warnings(
                &r.firm,
                t,
                t,
                &r.first.features,
                rules,
                &scorer.benchmarks,
                Some(nf),
            )),
            None => BTreeMap::new(),
        };
        out.push((r.uscc.clone(), LiveState::compose(&own, &network, cfg)));
    }
    // Their neighbours: recomposed where the warnings of their network rules moved.
    let only = rules.iter().filter(|r| r.uses_network()).all(|r| r.network_only());
    let mut ids: Vec<&String> = nets.keys().filter(|id| !changed.contains(id.as_str())).collect();
    ids.sort();
    for id in ids {
        let (gid, nf) = &nets[id];
        let network = if only {
            xinyong_credit::live::network_warnings(rules, nf, t, id)
        } else {
            // A network rule that also reads the firm's facts: read them.
            let firm = load_one(store, id, &data::day_str(t))?;
            let row = xinyong_credit::features::compute(&firm, t);
            xinyong_credit::live::colours(&run::evaluate_warnings(
                &firm,
                t,
                t,
                &row,
                rules,
                &scorer.benchmarks,
                Some(nf),
            ))
        };
        let Some(g) = h.groups.get_mut(gid) else { continue };
        if g.told(id) == Some(&network) {
            continue;
        }
        // What it was told is kept in memory only as a hint (a push whose transaction fails must not move
        // it): where the hint differs, the stored state decides, and the hint follows it.
        let told = match stored_state(store, id)? {
            Some(l) => l.network_part(rules),
            None => match store.run_score(&h.run_id, id)? {
                Some(j) => {
                    LiveState::of(&serde_json::from_str::<FirmScore>(&j).map_err(|e| ScoreError::Model(e.to_string()))?)
                        .network_part(rules)
                }
                None => BTreeMap::new(),
            },
        };
        g.tell(id, &told);
        if told != network {
            if let Some(own) = g.own_of(id) {
                out.push((id.clone(), LiveState::compose(own, &network, cfg)));
            }
        }
    }
    Ok(out)
}

/// A firm's score with its facts and without some of them (an objection's what-if): as of `as_of` (the
/// latest run's date) with what is known on `known_by`, the latest run's model, benchmarks and the firm's
/// place in its guarantee network.
pub type WhatIfFn =
    dyn Fn(&dyn Store, &str, &[i64], &str, &str) -> Result<(FirmScore, FirmScore), String> + Send + Sync;

pub fn what_if() -> std::sync::Arc<WhatIfFn> {
    // The latest run's scorer, kept until a new run is stored (as the live path keeps it).
    let held: Shared = Default::default();
    std::sync::Arc::new(move |store, uscc, except, as_of, known_by| {
        let go = || -> Result<(FirmScore, FirmScore), ScoreError> {
            let scorer = held_for(store, &held).map_err(ScoreError::Model)?;
            let t = parse_day(as_of)?;
            let k = parse_day(known_by)?.max(t);
            let kd = data::day_str(k);
            let net = match store.run_score(&scorer.run_id, uscc)? {
                Some(j) => {
                    serde_json::from_str::<NetOnly>(&j)
                        .map_err(|e| ScoreError::Model(e.to_string()))?
                        .network
                }
                None => None,
            };
            let one = |f: &FirmData| {
                run::assess_one_at(f, t, k, &scorer.model, &scorer.rules, &scorer.benchmarks, net.as_ref())
            };
            let with = one(&load_one_except(store, uscc, &kd, as_of, &[])?);
            let without = one(&load_one_except(store, uscc, &kd, as_of, except)?);
            Ok((with, without))
        };
        go().map_err(|e| e.to_string())
    })
}

/// One firm's facts as current on a date, and the guarantees it gave (stored under the borrowers).
pub fn load_one(store: &dyn Store, uscc: &str, known_by: &str) -> Result<FirmData, ScoreError> {
    load_one_except(store, uscc, known_by, known_by, &[])
}

/// [`load_one`] without the facts `except` (what-if: the firm's record without a disputed fact), and without
/// the negative facts whose credit-view retention ended before `retained_on` (the assessment's date).
pub fn load_one_except(
    store: &dyn Store,
    uscc: &str,
    known_by: &str,
    retained_on: &str,
    except: &[i64],
) -> Result<FirmData, ScoreError> {
    let mut names = Names::default();
    let mut f = FirmData::new(uscc);
    parse_day(known_by)?;
    let retention = Retention::on(retained_on)?;
    // facts_of gives the versions current on a date; the indicators look back up to 60 months, and versions
    // replaced before `known_by` do not change what is known on it, so the current-on-date view suffices.
    for s in store
        .facts_of(uscc, Some(known_by))?
        .into_iter()
        .filter(|s| !except.contains(&s.fact_id) && !retention.ended(&s.dataset, &s.fields, s.period.as_deref()))
    {
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
    for g in store
        .guarantees_given(uscc, known_by)?
        .into_iter()
        .filter(|g| !except.contains(&g.fact_id))
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_records_leave_the_credit_models_five_years_after_the_event_ends() {
        let r = Retention::on("2025-06-01").unwrap();
        let ended = r#"{"date":"2018-01-01","end_date":"2020-05-31"}"#;
        let kept = r#"{"date":"2018-01-01","end_date":"2020-06-01"}"#;
        assert!(
            r.ended("court.dishonest", ended, None),
            "5 years after 31 May 2020: out on 1 June 2025"
        );
        assert!(!r.ended("court.dishonest", kept, None), "its last day is 1 June 2025");
        assert!(r.ended("lender.bank.loans", r#"{"overdue_days":120}"#, Some("2020-04")));
        assert!(
            !r.ended("lender.bank.loans", r#"{"overdue_days":0}"#, Some("2020-04")),
            "not negative"
        );
        assert!(
            !r.ended("amr.registration", r#"{"date":"2001-01-01"}"#, None),
            "not negative"
        );
        assert!(
            !r.ended("court.dishonest", "not json", None),
            "unreadable: left to the loader's own checks"
        );
        // A recent loan month is kept without being read: its window counts from the period alone.
        assert!(!r.ended("lender.bank.loans", "not read", Some("2024-01")));
        let w = &r.rules.windows;
        assert_eq!(
            w.period_keep(xinyong_rights::View::Credit, "lender.bank.loans"),
            Some(xinyong_rights::Span::Years(5))
        );
        assert_eq!(w.period_keep(xinyong_rights::View::Credit, "court.dishonest"), None);
    }
}
