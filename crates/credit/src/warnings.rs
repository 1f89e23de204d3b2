//! The warning engine: rules as data (catalogue/warnings.toml), evaluated per firm as of a date.
//! A rule is a condition over facts and indicators, a colour, optional escalations to a stronger colour,
//! and a statement of how it clears. Evaluation returns the evidence (fact ids), the date the signal began
//! (its earliest evidence) and, where the data fixes it, the date it clears if nothing else happens.

use crate::data::{self, Day, FirmData};
use crate::features::{self, FeatureRow, Force, Snapshot};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Blue,
    Yellow,
    Red,
}

impl Colour {
    pub fn key(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Red => "red",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn test(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
        }
    }
}

/// A rule's condition. Every kind is documented in catalogue/warnings.toml's header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Cond {
    Event {
        datasets: Vec<String>,
        #[serde(default)]
        categories: Vec<String>,
        #[serde(default)]
        statuses: Vec<String>,
        #[serde(default)]
        details: Vec<String>,
        /// Only events in force on T (no end date, or ending after T). Every event stops counting on its end
        /// date (case closed, arrears paid, notice lifted); with `active` the window only caps stale records,
        /// so an open-ended event reports no clearing date.
        #[serde(default)]
        active: bool,
        /// Only events dated within this many months before T.
        #[serde(default)]
        window_months: Option<i32>,
        #[serde(default = "one")]
        min_count: usize,
        /// Only events with an amount of at least this many yuan.
        #[serde(default)]
        min_amount: Option<f64>,
        /// Only events whose amount is at least this share of the firm's net assets.
        #[serde(default)]
        min_share_of_net_assets: Option<f64>,
        /// Only events that began at least this many months before T (e.g. arrears outstanding for n months).
        #[serde(default)]
        min_age_months: Option<i32>,
    },
    Feature {
        id: String,
        op: Op,
        value: f64,
    },
    /// The indicator's percentile within the firm's industry benchmark group.
    FeaturePct {
        id: String,
        op: Op,
        pct: f64,
    },
    /// The indicator now minus the indicator `months` earlier.
    FeatureChange {
        id: String,
        op: Op,
        value: f64,
        months: i32,
    },
    /// A monthly metric meets `op value` in each of the last `months` complete months (ending with the month
    /// before the last complete one while that is not yet reported).
    Consecutive {
        metric: String,
        op: Op,
        value: f64,
        months: usize,
    },
    /// A monthly metric is down by more than `drop` (0.3 = 30 %) against the same month a year earlier in each
    /// of the last `months` complete months (ending with the month before the last complete one while that is
    /// not yet reported).
    YoyDrop {
        metric: String,
        drop: f64,
        months: usize,
    },
    /// Loan reports within the last `window_months` months.
    Loan {
        window_months: i32,
        #[serde(default)]
        min_overdue_days: Option<i64>,
        #[serde(default)]
        min_class: Option<u8>,
        /// Only reports of a roll-over (续贷, a new loan repaying the old one).
        #[serde(default)]
        rollover: bool,
    },
    /// The latest yearly code (e.g. tax credit grade) is one of `codes`.
    Code {
        key: String,
        codes: Vec<String>,
    },
    /// A yearly metric meets `op value` in each of the latest `years` consecutive years.
    Yearly {
        metric: String,
        op: Op,
        value: f64,
        years: usize,
    },
    /// No yearly record of `dataset` for the previous year although it was due by `due` (MM-DD) of this year,
    /// for firms founded before that year.
    MissingYearly {
        dataset: String,
        due: String,
    },
    /// The firm is in a circle (a strongly connected component of ≥ 2 firms: each can reach the others
    /// through guarantees) whose members' patterns include one of `patterns` (any circle when empty); with
    /// `member_red`, another member of the circle is red.
    Circle {
        #[serde(default)]
        patterns: Vec<xinyong_network::Pattern>,
        #[serde(default)]
        member_red: bool,
    },
    /// A firm it guarantees, or that guarantees it, is red (by rules without network conditions).
    NeighbourRed {},
    /// The contagion add-on PD (vulnerable-node model minus own PD) meets `op value`.
    Contagion {
        op: Op,
        value: f64,
    },
    /// A related company (a direct shareholding either way, the parent, the same corporate group) is in default.
    RelatedDefault {},
    /// Guarantees within the firm's corporate group (either side) in force rose by at least `min_share` (0.5 =
    /// 50 %) against 12 months earlier (any amount where there were none).
    IntraGroupRise {
        min_share: f64,
    },
    Any {
        of: Vec<Cond>,
    },
    All {
        of: Vec<Cond>,
    },
}

impl Cond {
    /// Reads the guarantee network (evaluated in the second pass, after every firm's own colour is known).
    pub fn uses_network(&self) -> bool {
        match self {
            Cond::Circle { .. }
            | Cond::NeighbourRed {}
            | Cond::Contagion { .. }
            | Cond::RelatedDefault {}
            | Cond::IntraGroupRise { .. } => true,
            Cond::Any { of } | Cond::All { of } => of.iter().any(Cond::uses_network),
            _ => false,
        }
    }

    /// Reads nothing but the guarantee network: it can be evaluated from a firm's place in the network alone
    /// (the live path re-evaluates a neighbour's network rules without loading its facts).
    pub fn network_only(&self) -> bool {
        match self {
            Cond::Any { of } | Cond::All { of } => of.iter().all(Cond::network_only),
            c => c.uses_network(),
        }
    }
}

impl Rule {
    pub fn uses_network(&self) -> bool {
        self.when.uses_network() || self.escalate.iter().any(|e| e.when.uses_network())
    }

    /// Every condition of it reads the guarantee network only (see `Cond::network_only`).
    pub fn network_only(&self) -> bool {
        self.when.network_only() && self.escalate.iter().all(|e| e.when.network_only())
    }
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub colour: Colour,
    pub when: Cond,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: u32,
    pub key: String,
    pub group: String,
    pub name_zh: String,
    pub name_en: String,
    pub force: Force,
    pub sources: Vec<String>,
    pub window: String,
    pub colour: Colour,
    pub evidence: String,
    pub clears: String,
    pub when: Cond,
    #[serde(default)]
    pub escalate: Vec<Escalation>,
}

#[derive(Debug, Clone, Deserialize)]
struct RulesFile {
    rule: Vec<Rule>,
}

/// Parses a rules file (TOML).
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let f: RulesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut ids: Vec<u32> = f.rule.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err("duplicate rule id".into());
    }
    for r in &f.rule {
        check_cond(&r.when).map_err(|e| format!("rule {}: {e}", r.id))?;
        for e in &r.escalate {
            check_cond(&e.when).map_err(|e| format!("rule {}: {e}", r.id))?;
        }
    }
    Ok(f.rule)
}

fn check_cond(c: &Cond) -> Result<(), String> {
    match c {
        Cond::Feature { id, .. } | Cond::FeaturePct { id, .. } | Cond::FeatureChange { id, .. } => {
            features::position(id)
                .map(|_| ())
                .ok_or(format!("unknown indicator {id}"))
        }
        Cond::Any { of } | Cond::All { of } => of.iter().try_for_each(check_cond),
        _ => Ok(()),
    }
}

/// The built-in rules (points 1–44 of the starting catalogue).
pub fn builtin_rules() -> Vec<Rule> {
    parse_rules(include_str!("../catalogue/warnings.toml")).expect("the built-in rules parse (tested)")
}

/// An active warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    pub rule: u32,
    pub colour: Colour,
    /// The earliest evidence date.
    pub since: Option<String>,
    /// The day it clears if nothing else happens, where the data fixes it.
    pub clears_on: Option<String>,
    pub evidence: Vec<i64>,
}

/// What a condition found.
#[derive(Default)]
struct Hit {
    facts: Vec<i64>,
    since: Option<Day>,
    /// The day the condition stops holding if nothing else happens; `None` when the data does not fix it.
    clears: Option<Day>,
}

impl Hit {
    fn fact(&mut self, f: i64, date: Option<Day>) {
        if self.facts.len() < 6 && !self.facts.contains(&f) {
            self.facts.push(f);
        }
        if let Some(d) = date {
            self.since = Some(self.since.map_or(d, |s| s.min(d)));
        }
    }
    /// Adds another hit's evidence and start (not its clearing day: see `any` and `all`).
    fn merge_evidence(&mut self, o: &Hit) {
        for f in &o.facts {
            if self.facts.len() < 6 && !self.facts.contains(f) {
                self.facts.push(*f);
            }
        }
        self.since = match (self.since, o.since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What the engine reads besides the firm's facts: its indicators now, and a way to get its indicators at an
/// earlier date and their industry percentile.
pub struct Context<'a> {
    pub firm: &'a FirmData,
    pub t: Day,
    /// Known time (see `features::Snapshot`).
    pub k: Day,
    pub row: &'a FeatureRow,
    /// The indicator's percentile (0–100) in the firm's benchmark group, if known.
    pub pct: &'a dyn Fn(usize, f64) -> Option<f64>,
    /// The firm's place in the guarantee network (second pass only; network conditions do not hold without).
    pub net: Option<&'a crate::network::NetFirm>,
}

/// The last month a monthly condition reads: the last complete month, or the one before while the last
/// is not yet reported (monthly data is delivered in the following month).
fn reported_month(last: data::Month, reported: impl Fn(data::Month) -> bool) -> data::Month {
    if reported(last) {
        last
    } else {
        last - 1
    }
}

fn months_days(m: i32) -> i32 {
    (m as f64 * 30.44).round() as i32
}

/// Indicators at earlier dates, by (months back, indicator position): shared by the rules of one evaluation.
/// Only the indicators a rule compares are computed at the earlier date.
type Earlier = Vec<((i32, usize), Option<f64>)>;

/// One condition; `snap` is the firm's snapshot at (`cx.t`, `cx.k`), made once per evaluation.
fn eval(c: &Cond, cx: &Context, snap: &Snapshot, earlier: &mut Earlier) -> Option<Hit> {
    let t = cx.t;
    let k = snap.k;
    match c {
        Cond::Event {
            datasets,
            categories,
            statuses,
            details,
            active,
            window_months,
            min_count,
            min_amount,
            min_share_of_net_assets,
            min_age_months,
        } => {
            let net_assets = min_share_of_net_assets.and_then(|_| {
                let i = features::position("cap_net_assets")?;
                // cap_net_assets is a signed log of 10k yuan: invert it.
                cx.row.values[i].map(|v| v.signum() * (v.abs().exp() - 1.0) * 1e4)
            });
            let mut hit = Hit::default();
            // When each counted event stops counting (`Day::MAX`: not fixed by the data).
            let mut ends: Vec<Day> = Vec::new();
            for e in snap.events() {
                if !datasets.iter().any(|d| d == &*e.dataset)
                    || (!categories.is_empty() && !categories.contains(&e.category))
                    || (!statuses.is_empty() && !statuses.contains(&e.status))
                    || (!details.is_empty() && !details.contains(&e.detail))
                    || !e.active(t)
                    || window_months.is_some_and(|w| e.date <= t - months_days(w))
                    || min_amount.is_some_and(|a| e.amount.unwrap_or(0.0) < a)
                    || min_age_months.is_some_and(|m| e.date > t - months_days(m))
                {
                    continue;
                }
                if let Some(share) = min_share_of_net_assets {
                    match net_assets {
                        Some(na) if na > 0.0 && e.amount.unwrap_or(0.0) >= share * na => {}
                        Some(na) if na <= 0.0 && e.amount.unwrap_or(0.0) > 0.0 => {}
                        _ => continue,
                    }
                }
                hit.fact(e.fact, Some(e.date));
                let clear = match (window_months, e.end) {
                    (Some(w), Some(end)) => Some((e.date + months_days(*w)).min(end)),
                    (Some(w), None) if !*active => Some(e.date + months_days(*w)),
                    (_, end) => end,
                };
                ends.push(clear.unwrap_or(Day::MAX));
            }
            if ends.len() < (*min_count).max(1) {
                return None;
            }
            // The condition holds while at least `min_count` events count.
            ends.sort_unstable_by(|a, b| b.cmp(a));
            let cl = ends[(*min_count).max(1) - 1];
            hit.clears = (cl != Day::MAX).then_some(cl);
            Some(hit)
        }
        Cond::Feature { id, op, value } => {
            let i = features::position(id)?;
            let v = cx.row.values[i]?;
            op.test(v, *value).then(|| {
                let mut h = Hit::default();
                for f in &cx.row.evidence[i] {
                    h.fact(*f, None);
                }
                h
            })
        }
        Cond::FeaturePct { id, op, pct } => {
            let i = features::position(id)?;
            let v = cx.row.values[i]?;
            let p = (cx.pct)(i, v)?;
            op.test(p, *pct).then(|| {
                let mut h = Hit::default();
                for f in &cx.row.evidence[i] {
                    h.fact(*f, None);
                }
                h
            })
        }
        Cond::FeatureChange { id, op, value, months } => {
            let i = features::position(id)?;
            let now = cx.row.values[i]?;
            let then = match earlier.iter().find(|(key, _)| *key == (*months, i)) {
                Some((_, v)) => (*v)?,
                None => {
                    let back = data::month_end(data::last_complete_month(t) - months);
                    let v = features::value_at(cx.firm, back, k, i);
                    earlier.push(((*months, i), v));
                    v?
                }
            };
            op.test(now - then, *value).then(|| {
                let mut h = Hit::default();
                for f in &cx.row.evidence[i] {
                    h.fact(*f, None);
                }
                h
            })
        }
        Cond::Consecutive {
            metric,
            op,
            value,
            months,
        } => {
            let obs = cx.firm.metrics.get(metric)?;
            let get = |m: i32| obs.iter().find(|o| o.period == m && o.known.at(k));
            let last = reported_month(snap.last, |m| get(m).is_some());
            let mut hit = Hit::default();
            for i in 0..*months as i32 {
                let m = last - i;
                let o = get(m)?;
                if !op.test(o.value, *value) {
                    return None;
                }
                hit.fact(o.fact, Some(data::month_end(m) - 27));
            }
            Some(hit)
        }
        Cond::YoyDrop { metric, drop, months } => {
            let obs = cx.firm.metrics.get(metric)?;
            let get = |m: i32| obs.iter().find(|o| o.period == m && o.known.at(k));
            let last = reported_month(snap.last, |m| get(m).is_some());
            let mut hit = Hit::default();
            for i in 0..*months as i32 {
                let m = last - i;
                let (a, b) = (get(m)?, get(m - 12)?);
                if b.value <= 0.0 || a.value >= b.value * (1.0 - drop) {
                    return None;
                }
                hit.fact(a.fact, Some(data::month_end(m) - 27));
            }
            Some(hit)
        }
        Cond::Loan {
            window_months,
            min_overdue_days,
            min_class,
            rollover,
        } => {
            let lo = snap.last - window_months + 1;
            let mut hit = Hit::default();
            let mut any = false;
            for l in cx
                .firm
                .loans
                .iter()
                .filter(|l| l.month >= lo && l.month <= snap.last && l.known.at(k))
            {
                if min_overdue_days.is_some_and(|d| l.overdue_days < d)
                    || min_class.is_some_and(|c| l.class5 < c)
                    || (*rollover && !l.rollover)
                {
                    continue;
                }
                any = true;
                hit.fact(l.fact, Some(data::month_end(l.month)));
            }
            any.then_some(hit)
        }
        Cond::Code { key, codes } => {
            let year_t = data::month_of_day(t).div_euclid(12);
            let c = cx
                .firm
                .codes
                .get(key)?
                .iter()
                .filter(|c| c.known.at(k) && (c.year < year_t || data::month_end(c.year * 12 + 11) <= t))
                .max_by_key(|c| c.year)?;
            codes.contains(&c.code).then(|| {
                let mut h = Hit::default();
                h.fact(c.fact, None);
                h
            })
        }
        Cond::Yearly {
            metric,
            op,
            value,
            years,
        } => {
            let obs = cx.firm.metrics.get(metric)?;
            let year_t = data::month_of_day(t).div_euclid(12);
            let mut ys: Vec<&data::Obs> = obs
                .iter()
                .filter(|o| o.known.at(k) && (o.period < year_t || data::month_end(o.period * 12 + 11) <= t))
                .collect();
            ys.sort_by_key(|o| std::cmp::Reverse(o.period));
            let latest = ys.first()?.period;
            let mut hit = Hit::default();
            for i in 0..*years as i32 {
                let o = ys.iter().find(|o| o.period == latest - i)?;
                if !op.test(o.value, *value) {
                    return None;
                }
                hit.fact(o.fact, None);
            }
            Some(hit)
        }
        Cond::MissingYearly { dataset, due } => {
            let year_t = data::month_of_day(t).div_euclid(12);
            let due_day = data::day(&format!("{year_t:04}-{due}"))?;
            if t < due_day {
                return None;
            }
            let reg = cx.firm.registration_at(t, k)?;
            if reg.status != "active" || reg.founded.is_none_or(|f| f > data::month_end((year_t - 1) * 12 + 11)) {
                return None;
            }
            let prefix = format!("{dataset}:");
            let filed = cx.firm.metrics.iter().any(|(key, obs)| {
                key.starts_with(&prefix) && obs.iter().any(|o| o.period == year_t - 1 && o.known.at(k))
            });
            (!filed).then(|| {
                let mut h = Hit::default();
                h.fact(reg.fact, Some(due_day));
                h
            })
        }
        Cond::Circle { patterns, member_red } => {
            let n = cx.net?;
            if !n.in_circle {
                return None;
            }
            if !patterns.is_empty() && !patterns.iter().any(|p| n.circle_patterns.contains(p)) {
                return None;
            }
            if *member_red && n.circle_red.is_empty() {
                return None;
            }
            let mut h = Hit::default();
            for f in &n.circle_contracts {
                h.fact(*f, None);
            }
            Some(h)
        }
        Cond::NeighbourRed {} => {
            let n = cx.net?;
            if n.neighbours_red.is_empty() {
                return None;
            }
            let mut h = Hit::default();
            for f in &n.neighbour_contracts {
                h.fact(*f, None);
            }
            Some(h)
        }
        Cond::Contagion { op, value } => {
            let n = cx.net?;
            if !op.test(n.contagion, *value) {
                return None;
            }
            let mut h = Hit::default();
            for f in &n.path_contracts {
                h.fact(*f, None);
            }
            Some(h)
        }
        Cond::RelatedDefault {} => {
            let n = cx.net?;
            if n.related_defaulted.is_empty() {
                return None;
            }
            let mut h = Hit::default();
            for f in &n.related_facts {
                h.fact(*f, None);
            }
            Some(h)
        }
        Cond::IntraGroupRise { min_share } => {
            let n = cx.net?;
            let (now, then) = (n.intra_group_amount, n.intra_group_amount_12m_ago);
            if now <= then || now - then < min_share * then {
                return None;
            }
            let mut h = Hit::default();
            for f in &n.intra_group_contracts {
                h.fact(*f, None);
            }
            Some(h)
        }
        Cond::Any { of } => {
            // Holds until every branch that holds has cleared: the latest day, unknown if any branch's is.
            let mut acc: Option<Hit> = None;
            for c in of {
                if let Some(h) = eval(c, cx, snap, earlier) {
                    match &mut acc {
                        Some(a) => {
                            a.merge_evidence(&h);
                            a.clears = a.clears.zip(h.clears).map(|(x, y)| x.max(y));
                        }
                        None => acc = Some(h),
                    }
                }
            }
            acc
        }
        Cond::All { of } => {
            // Holds until the first branch clears.
            let mut acc = Hit::default();
            for c in of {
                let h = eval(c, cx, snap, earlier)?;
                acc.merge_evidence(&h);
                acc.clears = match (acc.clears, h.clears) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
            }
            Some(acc)
        }
    }
}

/// Evaluates the rules that do not read the guarantee network (the first pass) for one firm as of `cx.t`;
/// returns the active warnings, by rule id.
pub fn evaluate(rules: &[Rule], cx: &Context) -> Vec<Warning> {
    evaluate_where(rules, cx, |r| !r.uses_network())
}

/// Evaluates the rules that read the guarantee network (the second pass; `cx.net` set).
pub fn evaluate_network(rules: &[Rule], cx: &Context) -> Vec<Warning> {
    evaluate_where(rules, cx, Rule::uses_network)
}

fn evaluate_where(rules: &[Rule], cx: &Context, keep: impl Fn(&Rule) -> bool) -> Vec<Warning> {
    let mut earlier = Earlier::new();
    let snap = Snapshot::new(cx.firm, cx.t, cx.k);
    let mut out = Vec::new();
    for r in rules.iter().filter(|r| keep(r)) {
        let Some(hit) = eval(&r.when, cx, &snap, &mut earlier) else {
            continue;
        };
        let mut colour = r.colour;
        let mut hit = hit;
        for e in &r.escalate {
            if e.colour > colour {
                if let Some(h) = eval(&e.when, cx, &snap, &mut earlier) {
                    // The warning clears with its own condition; an escalation only adds evidence.
                    colour = e.colour;
                    hit.merge_evidence(&h);
                }
            }
        }
        out.push(Warning {
            rule: r.id,
            colour,
            since: hit.since.map(data::day_str),
            clears_on: hit.clears.filter(|c| *c > cx.t).map(data::day_str),
            evidence: hit.facts,
        });
    }
    out
}

/// A firm's colour: its worst active warning.
pub fn colour_of(ws: &[Warning]) -> Option<Colour> {
    ws.iter().map(|w| w.colour).max()
}
