//! A whole recompute as of a date: indicators, benchmarks, warnings, scores for every firm; the monthly history
//! behind the macro index, the warning history and the change events.

use crate::bench::{self, Benchmarks};
use crate::data::{self, Day, FirmData, Month};
use crate::features::{self, FeatureRow};
use crate::index::{self, FirmMonth, IndexPoint, Mover};
use crate::network::{GroupView, NetRun};
use crate::score::{self, CreditModel, Detail, FirmScore};
use crate::warnings::{self, Colour, Rule, Warning};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A span of months during which a warning was active (month ends; `end` = the first month-end it was no
/// longer active, `None` while it still is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningSpan {
    pub uscc: String,
    pub rule: u32,
    pub colour: Colour,
    pub start: String,
    pub end: Option<String>,
}

/// A change in a firm's warnings, colour or grade, as seen between two consecutive evaluation dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditEvent {
    /// Stable: the same change computed again has the same id.
    pub id: String,
    pub uscc: String,
    pub date: String,
    /// warning_raised, warning_cleared, warning_colour, colour, grade.
    pub kind: String,
    pub rule: Option<u32>,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    pub as_of: String,
    pub model_version: String,
    pub scores: Vec<FirmScore>,
    pub benchmarks: Benchmarks,
    /// Per firm and month: PD, grade, colour (the history behind charts and the index).
    pub history: Vec<FirmMonth>,
    pub warning_spans: Vec<WarningSpan>,
    pub events: Vec<CreditEvent>,
    pub index: Vec<IndexPoint>,
    pub movers: Vec<Mover>,
    /// Guarantee groups on the as-of date.
    pub circles: Vec<GroupView>,
}

/// Indicator benchmarks (no force or score distributions yet) of firms at `t` as known on `k`.
fn indicator_benchmarks(firms: &[FirmData], rows: &[FeatureRow], t: Day, k: Day) -> Benchmarks {
    let brows: Vec<(Vec<String>, Vec<Option<f64>>)> = firms
        .iter()
        .zip(rows)
        .filter_map(|(f, r)| {
            let reg = f.registration_at(t, k)?;
            in_scope(f, t, k).then(|| (bench::keys(&reg.industry, &reg.size_class), r.values.clone()))
        })
        .collect();
    Benchmarks::build(&brows, features::N)
}

/// Scores every firm at `t` as known on `k` (indicators, benchmarks, warnings, scores with force percentiles).
pub fn assess(firms: &[FirmData], t: Day, k: Day, model: &CreditModel, rules: &[Rule]) -> (Vec<FirmScore>, Benchmarks) {
    let (s, b, _) = assess_with(firms, t, k, model, rules, Detail::Full);
    (s, b)
}

/// `assess`, with the guarantee network it computed.
pub fn assess_network(
    firms: &[FirmData],
    t: Day,
    k: Day,
    model: &CreditModel,
    rules: &[Rule],
) -> (Vec<FirmScore>, Benchmarks, NetRun) {
    assess_with(firms, t, k, model, rules, Detail::Full)
}

/// `assess`; with [`Detail::History`], the benchmarks of forces and scores (and so the force percentiles) are
/// skipped, and the scores keep only what the month-ends of the history keep.
fn assess_with(
    firms: &[FirmData],
    t: Day,
    k: Day,
    model: &CreditModel,
    rules: &[Rule],
    detail: Detail,
) -> (Vec<FirmScore>, Benchmarks, NetRun) {
    let rows: Vec<FeatureRow> = firms.par_iter().map(|f| features::compute_at(f, t, k)).collect();
    let ib = indicator_benchmarks(firms, &rows, t, k);
    let mut scores: Vec<FirmScore> = firms
        .par_iter()
        .zip(rows)
        .map(|(f, row)| {
            let ws = evaluate_warnings(f, t, k, &row, rules, &ib, None);
            score::score_firm(model, f, t, k, row, ws, &ib, detail)
        })
        .collect();
    let net = network_pass(firms, &mut scores, t, k, model, rules, &ib);
    if detail == Detail::History {
        return (scores, ib, net);
    }
    // Full benchmarks: indicators, forces, score.
    let brows: Vec<(Vec<String>, Vec<Option<f64>>)> = firms
        .iter()
        .zip(&scores)
        .filter_map(|(f, s)| {
            let reg = f.registration_at(t, k)?;
            if !in_scope(f, t, k) {
                return None;
            }
            let mut v = s.features.values.clone();
            v.extend(s.forces.iter().map(|x| Some(*x)));
            v.push(Some(s.score));
            Some((bench::keys(&reg.industry, &reg.size_class), v))
        })
        .collect();
    let full = Benchmarks::build(&brows, features::N + 6);
    for s in &mut scores {
        fill_force_percentiles(s, &full);
    }
    (scores, full, net)
}

/// The second pass: the guarantee network from every firm's own PD and colour (rules without network
/// conditions), then the network rules (45–49) per firm; colour and grade follow.
#[allow(clippy::too_many_arguments)]
fn network_pass(
    firms: &[FirmData],
    scores: &mut [FirmScore],
    t: Day,
    k: Day,
    model: &CreditModel,
    rules: &[Rule],
    ib: &Benchmarks,
) -> NetRun {
    let mut net = {
        let refs: Vec<Option<&FirmScore>> = firms
            .iter()
            .zip(scores.iter())
            .map(|(f, s)| in_scope(f, t, k).then_some(s))
            .collect();
        crate::network::analyse(firms, &refs, t, k, &model.config.network)
    };
    // Each scored firm's network view moves into its score (no copy); the views of firms not scored here
    // stay in the run.
    let views: Vec<Option<crate::network::NetFirm>> = firms.iter().map(|f| net.firms.remove(&f.uscc)).collect();
    scores.par_iter_mut().zip(firms).zip(views).for_each(|((s, f), nf)| {
        if let Some(nf) = nf {
            let extra = evaluate_warnings(f, t, k, &s.features, rules, ib, Some(&nf));
            score::apply_network(model, s, extra, nf);
        }
    });
    net
}

/// Places a score's forces in its benchmark group.
pub fn fill_force_percentiles(s: &mut FirmScore, bm: &Benchmarks) {
    if let Some(g) = bm.groups.get(&s.benchmark_group) {
        for k in 0..5 {
            s.force_percentiles[k] = g
                .dists
                .get(features::N + k)
                .and_then(|d| d.as_ref())
                .map(|d| d.percentile(s.forces[k]));
        }
    }
}

/// A firm's warnings at `t` as known on `k`: without `net`, the first pass (the rules that do not read the
/// guarantee network); with the firm's place in the network, the network rules (the second pass).
pub fn evaluate_warnings(
    f: &FirmData,
    t: Day,
    k: Day,
    row: &FeatureRow,
    rules: &[Rule],
    bm: &Benchmarks,
    net: Option<&crate::network::NetFirm>,
) -> Vec<Warning> {
    let reg = f.registration_at(t, k);
    let keys = bench::keys(
        reg.map_or("", |r| r.industry.as_str()),
        reg.map_or("", |r| r.size_class.as_str()),
    );
    let pct = |i: usize, v: f64| -> Option<f64> {
        let (_, g) = bm.group(&keys)?;
        g.dists.get(i)?.as_ref().map(|d| d.percentile(v))
    };
    let cx = warnings::Context {
        firm: f,
        t,
        k,
        row,
        pct: &pct,
        net,
    };
    match net {
        None => warnings::evaluate(rules, &cx),
        Some(_) => warnings::evaluate_network(rules, &cx),
    }
}

/// Scores one firm alone as of `t`, with benchmarks from an earlier full run: the incremental recompute.
/// `net` is the firm's place in the guarantee network from that run (the network is a whole-district
/// computation; an incremental recompute reuses it).
pub fn assess_one(
    f: &FirmData,
    t: Day,
    model: &CreditModel,
    rules: &[Rule],
    bm: &Benchmarks,
    net: Option<&crate::network::NetFirm>,
) -> FirmScore {
    assess_one_at(f, t, t, model, rules, bm, net)
}

/// [`assess_one`] at valid time `t` as known on `k` (a restatement: what is known now about the date).
pub fn assess_one_at(
    f: &FirmData,
    t: Day,
    k: Day,
    model: &CreditModel,
    rules: &[Rule],
    bm: &Benchmarks,
    net: Option<&crate::network::NetFirm>,
) -> FirmScore {
    let row = features::compute_at(f, t, k);
    let ws = evaluate_warnings(f, t, k, &row, rules, bm, None);
    let mut s = score::score_firm(model, f, t, k, row, ws, bm, Detail::Full);
    if let Some(nf) = net {
        let extra = evaluate_warnings(f, t, k, &s.features, rules, bm, Some(nf));
        score::apply_network(model, &mut s, extra, nf.clone());
    }
    fill_force_percentiles(&mut s, bm);
    s
}

/// Which firms count: registered by `t` and not deregistered (or revoked) by then, as known on `k`.
pub fn in_scope(f: &FirmData, t: Day, k: Day) -> bool {
    f.registration_at(t, k.max(t)).is_some_and(|r| {
        r.founded.is_none_or(|d| d <= t) && (r.status == "active" || r.dereg_date.is_some_and(|d| d > t))
    })
}

/// The full recompute as of `t`.
pub fn recompute(firms: &[FirmData], t: Day, model: &CreditModel, rules: &[Rule]) -> RunOutput {
    let cfg = &model.config;
    let last = data::last_complete_month(t);
    let months: Vec<Month> = ((last - cfg.index_months as i32 + 1)..=last).collect();
    // The monthly history: every firm at every month-end of the window.
    let mut history: Vec<FirmMonth> = Vec::new();
    let mut monthly_warnings: Vec<Vec<Vec<Warning>>> = Vec::new(); // [month][firm]
    let mut monthly_grade: Vec<Vec<Option<String>>> = Vec::new();
    // Each month-end as known on the as-of date: the history is restated with today's knowledge (a run stored
    // on an earlier date keeps the history as it was known then). The month-ends are independent: as many are
    // assessed at once as there are threads (each assessment has sequential steps, such as the network, that
    // would leave cores idle), and only what the history keeps of each is held.
    let month_end = |m: Month| {
        let tm = data::month_end(m);
        let (scores, _, _) = assess_with(firms, tm, t, model, rules, Detail::History);
        let mut hist = Vec::new();
        let mut ws = Vec::with_capacity(firms.len());
        let mut gs = Vec::with_capacity(firms.len());
        for (f, s) in firms.iter().zip(scores) {
            if !in_scope(f, tm, t) {
                ws.push(Vec::new());
                gs.push(None);
                continue;
            }
            hist.push(index::firm_month(f, m, t, &s, cfg));
            gs.push(Some(s.grade.clone()));
            ws.push(s.warnings);
        }
        (hist, ws, gs)
    };
    // At most four at once: each holds every firm's score until its history rows are taken.
    for chunk in months.chunks(rayon::current_num_threads().clamp(1, 4)) {
        let done: Vec<_> = chunk.par_iter().map(|&m| month_end(m)).collect();
        for (hist, ws, gs) in done {
            history.extend(hist);
            monthly_warnings.push(ws);
            monthly_grade.push(gs);
        }
    }
    // The as-of state itself.
    let (scores, benchmarks, net) = assess_with(firms, t, t, model, rules, Detail::Full);
    let circles = net.group_views();
    let scores: Vec<FirmScore> = scores
        .into_iter()
        .zip(firms)
        .filter(|(_, f)| in_scope(f, t, t))
        .map(|(s, _)| s)
        .collect();
    // Warning spans and events, from the month-ends and then the as-of date.
    let mut points: Vec<Point> = months
        .iter()
        .zip(monthly_warnings)
        .zip(monthly_grade)
        .map(|((m, w), g)| (data::day_str(data::month_end(*m)), w, g))
        .collect();
    if data::month_end(last) != t {
        let by_uscc: BTreeMap<&str, &FirmScore> = scores.iter().map(|s| (s.uscc.as_str(), s)).collect();
        let w = firms
            .iter()
            .map(|f| {
                by_uscc
                    .get(f.uscc.as_str())
                    .map(|s| s.warnings.clone())
                    .unwrap_or_default()
            })
            .collect();
        let g = firms
            .iter()
            .map(|f| by_uscc.get(f.uscc.as_str()).map(|s| s.grade.clone()))
            .collect();
        points.push((data::day_str(t), w, g));
    }
    let (warning_spans, events) = changes(firms, &points);
    let (index, movers) = index::build(&history, &months, cfg);
    RunOutput {
        as_of: data::day_str(t),
        model_version: model.version.clone(),
        scores,
        benchmarks,
        history,
        warning_spans,
        events,
        index,
        movers,
        circles,
    }
}

fn event_id(uscc: &str, date: &str, kind: &str, rule: Option<u32>, after: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{uscc}|{date}|{kind}|{rule:?}|{after}").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

type Point = (String, Vec<Vec<Warning>>, Vec<Option<String>>);

/// Warning spans and change events from a sequence of evaluation dates.
fn changes(firms: &[FirmData], points: &[Point]) -> (Vec<WarningSpan>, Vec<CreditEvent>) {
    let mut spans = Vec::new();
    let mut events = Vec::new();
    for (i, f) in firms.iter().enumerate() {
        // Per open warning: its current colour, its strongest colour so far (the span's), its start.
        let mut open: BTreeMap<u32, (Colour, Colour, String)> = BTreeMap::new();
        let mut prev_colour: Option<Colour> = None;
        let mut prev_grade: Option<String> = None;
        for (k, (date, ws, gs)) in points.iter().enumerate() {
            let now: BTreeMap<u32, Colour> = ws[i].iter().map(|w| (w.rule, w.colour)).collect();
            let mut ev = |kind: &str, rule: Option<u32>, before: String, after: String| {
                events.push(CreditEvent {
                    id: event_id(&f.uscc, date, kind, rule, &after),
                    uscc: f.uscc.clone(),
                    date: date.clone(),
                    kind: kind.to_string(),
                    rule,
                    before,
                    after,
                })
            };
            let first = k == 0;
            for (rule, (c, peak, start)) in std::mem::take(&mut open) {
                match now.get(&rule) {
                    Some(nc) => {
                        if *nc != c && !first {
                            ev("warning_colour", Some(rule), c.key().into(), nc.key().into());
                        }
                        open.insert(rule, (*nc, (*nc).max(peak), start));
                    }
                    None => {
                        spans.push(WarningSpan {
                            uscc: f.uscc.clone(),
                            rule,
                            colour: peak,
                            start,
                            end: Some(date.clone()),
                        });
                        ev("warning_cleared", Some(rule), c.key().into(), String::new());
                    }
                }
            }
            for (rule, c) in &now {
                if !open.contains_key(rule) {
                    let start = ws[i]
                        .iter()
                        .find(|w| w.rule == *rule)
                        .and_then(|w| w.since.clone())
                        .filter(|_| first)
                        .unwrap_or_else(|| date.clone());
                    open.insert(*rule, (*c, *c, start));
                    if !first {
                        ev("warning_raised", Some(*rule), String::new(), c.key().into());
                    }
                }
            }
            let colour = warnings::colour_of(&ws[i]);
            if !first && colour != prev_colour {
                let key = |c: Option<Colour>| c.map_or("none", |c| c.key()).to_string();
                ev("colour", None, key(prev_colour), key(colour));
            }
            prev_colour = colour;
            let grade = gs[i].clone();
            if !first && grade != prev_grade && grade.is_some() && prev_grade.is_some() {
                ev(
                    "grade",
                    None,
                    prev_grade.clone().unwrap_or_default(),
                    grade.clone().unwrap_or_default(),
                );
            }
            prev_grade = grade;
        }
        for (rule, (_, c, start)) in open {
            spans.push(WarningSpan {
                uscc: f.uscc.clone(),
                rule,
                colour: c,
                start,
                end: None,
            });
        }
    }
    (spans, events)
}

/// Links guarantees to the guarantors' records (facts are stored under the borrower).
pub fn link_guarantees(firms: &mut [FirmData]) {
    let pos: BTreeMap<String, usize> = firms.iter().enumerate().map(|(i, f)| (f.uscc.clone(), i)).collect();
    let mut given: Vec<(usize, data::Guarantee, Option<data::Prov>)> = Vec::new();
    for f in firms.iter() {
        for g in &f.guarantees_received {
            if let Some(&i) = pos.get(&g.guarantor) {
                // Looked up before `finish` sorts: a linear search over the borrower's facts.
                let p = f.provenance.iter().find(|p| p.fact == g.fact).cloned();
                given.push((i, g.clone(), p));
            }
        }
    }
    for (i, g, prov) in given {
        if let Some(p) = prov {
            firms[i].provenance.push(p);
        }
        firms[i].guarantees_given.push(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(rule: u32, colour: Colour) -> Warning {
        Warning {
            rule,
            colour,
            since: None,
            clears_on: None,
            evidence: vec![1],
        }
    }

    #[test]
    fn a_de_escalation_is_one_event_and_the_span_keeps_its_peak() {
        let firms = vec![FirmData::new("91330604MA2B7Y8F54")];
        let p = |d: &str, ws: Vec<Warning>| -> Point { (d.to_string(), vec![ws], vec![Some("B".to_string())]) };
        let points = vec![
            p("2025-01-31", vec![w(28, Colour::Red)]),
            p("2025-02-28", vec![w(28, Colour::Yellow)]),
            p("2025-03-31", vec![w(28, Colour::Yellow)]),
            p("2025-04-30", vec![w(28, Colour::Red)]),
            p("2025-05-31", vec![]),
        ];
        let (spans, events) = changes(&firms, &points);
        let kinds: Vec<(String, String, String, String)> = events
            .iter()
            .map(|e| (e.date.clone(), e.kind.clone(), e.before.clone(), e.after.clone()))
            .collect();
        let e = |d: &str, k: &str, b: &str, a: &str| (d.to_string(), k.to_string(), b.to_string(), a.to_string());
        assert_eq!(
            kinds,
            [
                e("2025-02-28", "warning_colour", "red", "yellow"),
                e("2025-02-28", "colour", "red", "yellow"),
                e("2025-04-30", "warning_colour", "yellow", "red"),
                e("2025-04-30", "colour", "yellow", "red"),
                e("2025-05-31", "warning_cleared", "red", ""),
                e("2025-05-31", "colour", "red", "none"),
            ]
        );
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (spans[0].colour, spans[0].end.as_deref()),
            (Colour::Red, Some("2025-05-31"))
        );
    }
}
