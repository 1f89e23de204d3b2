//! The warning rules against hand-made cases, as data: `tests/fixtures/warnings/NN_key.toml` holds the cases
//! of rule NN (key = the rule's key). Each case is a firm's stored facts and the colour rule NN must give it
//! as of the fixture's date ("none": the rule must not fire). Every built-in rule needs a fixture with at least
//! one positive case in its colour, one per escalation colour, and two negative cases (near misses).
//!
//! Fixture format:
//!
//! ```toml
//! as_of = "2025-06-30"          # T
//! known_by = "2025-06-30"       # optional: the known time (default T)
//! known_from = "2000-01-01"     # optional: the default delivery date of the facts
//!
//! [[case]]
//! name = "listed, no end date"
//! expect = "red"                # red | yellow | blue | none
//! as_of = "2025-06-29"          # optional per case, as is known_by
//! industry_pct = 95.0           # optional: the percentile any indicator has in its benchmark group
//! net = { contagion = 0.05, path_contracts = [1] }   # optional: the firm's place in the guarantee network
//!                               # (a network::NetFirm); the network rules (45–49) are then evaluated too
//! [[case.fact]]
//! dataset = "court.dishonest"
//! source = "court"
//! event_date = "2025-03-01"     # or period = "2025-05" / "2024"; optional end_date, known_from, known_to, id
//! fields = { category = "dishonest_debtor", amount = 120000 }   # or a JSON string
//! ```

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use xinyong_credit::data::{self, Day, FirmData, Names, RawFact};
use xinyong_credit::features;
use xinyong_credit::network::NetFirm;
use xinyong_credit::warnings::{self, Colour, Context, Rule, Warning};

/// The firm of every case.
const USCC: &str = "91330521MA2B00001X";
/// When a fact was delivered, unless the fixture says otherwise.
const DEFAULT_KNOWN_FROM: &str = "2000-01-01";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    as_of: String,
    #[serde(default)]
    known_by: Option<String>,
    #[serde(default)]
    known_from: Option<String>,
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    expect: String,
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    known_by: Option<String>,
    #[serde(default)]
    industry_pct: Option<f64>,
    /// The firm's place in the guarantee network (rules 45–49): a `NetFirm` (network.rs) as an inline table.
    #[serde(default)]
    net: Option<NetFirm>,
    #[serde(default)]
    fact: Vec<Fact>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fact {
    #[serde(default)]
    id: Option<i64>,
    dataset: String,
    source: String,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    event_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    known_from: Option<String>,
    #[serde(default)]
    known_to: Option<String>,
    /// An inline table, or the JSON text the store would hold.
    fields: toml::Value,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/warnings")
}

/// Every fixture: (rule id, key, file name, contents), by file name.
fn fixtures() -> Vec<(u32, String, String, Fixture)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/warnings exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let file = p.file_name().unwrap().to_string_lossy().to_string();
            let stem = file.trim_end_matches(".toml");
            let (num, key) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{file}: the name is NN_key.toml"));
            let id: u32 = num
                .parse()
                .unwrap_or_else(|_| panic!("{file}: the name starts with the rule number"));
            let text = std::fs::read_to_string(&p).unwrap();
            let fx: Fixture = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            (id, key.to_string(), file, fx)
        })
        .collect()
}

fn expected(file: &str, case: &Case) -> Option<Colour> {
    match case.expect.as_str() {
        "red" => Some(Colour::Red),
        "yellow" => Some(Colour::Yellow),
        "blue" => Some(Colour::Blue),
        "none" => None,
        x => panic!(
            "{file}: case {:?}: expect = {x:?} (red, yellow, blue or none)",
            case.name
        ),
    }
}

fn day(file: &str, s: &str) -> Day {
    data::day(s).unwrap_or_else(|| panic!("{file}: bad date {s:?}"))
}

/// A case's facts as the store would hand them over, with ids (given, or 1, 2, … in order).
fn raw_facts(fx: &Fixture, case: &Case) -> Vec<RawFact> {
    let mut next = 1;
    case.fact
        .iter()
        .map(|f| {
            let fact_id = f.id.unwrap_or(next);
            next = fact_id + 1;
            let fields = match &f.fields {
                toml::Value::String(json) => json.clone(),
                v => serde_json::to_string(v).expect("fields serialise to JSON"),
            };
            RawFact {
                fact_id,
                uscc: USCC.to_string(),
                source: f.source.clone(),
                dataset: f.dataset.clone(),
                period: f.period.clone(),
                event_date: f.event_date.clone(),
                end_date: f.end_date.clone(),
                fields,
                known_from: f
                    .known_from
                    .clone()
                    .or_else(|| fx.known_from.clone())
                    .unwrap_or_else(|| DEFAULT_KNOWN_FROM.to_string()),
                known_to: f.known_to.clone(),
            }
        })
        .collect()
}

fn firm_of(file: &str, case: &Case, facts: &[RawFact]) -> FirmData {
    let mut firm = FirmData::new(USCC);
    let mut names = Names::default();
    for f in facts {
        if let Err(e) = firm.add(f, &mut names) {
            panic!("{file}: case {:?}: fact {} not read: {e:?}", case.name, f.fact_id);
        }
    }
    firm.finish();
    firm
}

/// The warnings of a firm at `t` as known on `k`, with every indicator at the case's industry percentile;
/// with `net`, the network rules' second pass too.
fn evaluate(firm: &FirmData, t: Day, k: Day, pct: Option<f64>, net: Option<&NetFirm>, rules: &[Rule]) -> Vec<Warning> {
    let row = if k == t {
        features::compute(firm, t)
    } else {
        features::compute_at(firm, t, k)
    };
    let pct = move |_: usize, _: f64| pct;
    let cx = Context {
        firm,
        t,
        k,
        row: &row,
        pct: &pct,
        net: None,
    };
    let mut ws = warnings::evaluate(rules, &cx);
    if let Some(n) = net {
        let cx = Context { net: Some(n), ..cx };
        ws.extend(warnings::evaluate_network(rules, &cx));
    }
    ws
}

fn colour(ws: &[Warning], rule: u32) -> Option<Colour> {
    ws.iter().find(|w| w.rule == rule).map(|w| w.colour)
}

fn show(c: Option<Colour>) -> &'static str {
    c.map_or("none", Colour::key)
}

/// Checks one case; returns its failures.
fn check(rule: u32, file: &str, fx: &Fixture, case: &Case, rules: &[Rule]) -> Vec<String> {
    let mut fails = Vec::new();
    let as_of = case.as_of.as_deref().unwrap_or(&fx.as_of);
    let t = day(file, as_of);
    let k = case
        .known_by
        .as_deref()
        .or(fx.known_by.as_deref())
        .map_or(t, |s| day(file, s))
        .max(t);
    let facts = raw_facts(fx, case);
    let firm = firm_of(file, case, &facts);
    let ws = evaluate(&firm, t, k, case.industry_pct, case.net.as_ref(), rules);
    let want = expected(file, case);
    let got = colour(&ws, rule);
    let mut fail = |what: String| {
        fails.push(format!(
            "{file}: case {:?}: rule {rule}: {what}\n  warnings: {ws:?}",
            case.name
        ))
    };
    if got != want {
        fail(format!("expected {}, got {}", show(want), show(got)));
    }
    let Some(w) = ws.iter().find(|w| w.rule == rule) else {
        return fails;
    };
    let ids: BTreeSet<i64> = facts.iter().map(|f| f.fact_id).collect();
    if w.evidence.is_empty() {
        fail("fires without evidence".into());
    }
    if let Some(x) = w.evidence.iter().find(|x| !ids.contains(x)) {
        fail(format!("evidence cites fact {x}, not in the case"));
    }
    if let Some(s) = &w.since {
        if day(file, s) > t {
            fail(format!("since {s} is after as_of {as_of}"));
        }
    }
    let Some(clears) = &w.clears_on else {
        return fails;
    };
    let c = day(file, clears);
    if c <= t {
        fail(format!("clears_on {clears} is not after as_of {as_of}"));
        return fails;
    }
    // "If nothing else happens": the facts as known on k, none replaced later, none dated after T. The rule
    // holds the day before its clearing day and not on it.
    let kept: Vec<RawFact> = facts
        .iter()
        .filter(|f| {
            let known = data::day(&f.known_from).is_some_and(|d| d <= k)
                && f.known_to.as_deref().and_then(data::day).is_none_or(|d| d > k);
            let dated = f.event_date.as_deref().and_then(data::day).is_none_or(|d| d <= t);
            known && dated
        })
        .map(|f| RawFact {
            known_to: None,
            ..f.clone()
        })
        .collect();
    let still = firm_of(file, case, &kept);
    if colour(
        &evaluate(&still, c - 1, c - 1, case.industry_pct, case.net.as_ref(), rules),
        rule,
    )
    .is_none()
    {
        fail(format!(
            "no longer fires on {}, before clears_on {clears}",
            data::day_str(c - 1)
        ));
    }
    if let Some(x) = colour(
        &evaluate(&still, c, c, case.industry_pct, case.net.as_ref(), rules),
        rule,
    ) {
        fail(format!("still fires ({}) on clears_on {clears}", x.key()));
    }
    fails
}

#[test]
fn every_case_of_every_rule() {
    let rules = warnings::builtin_rules();
    let mut fails = Vec::new();
    let mut n = 0;
    for (id, _, file, fx) in fixtures() {
        for case in &fx.case {
            n += 1;
            fails.extend(check(id, &file, &fx, case, &rules));
        }
    }
    assert!(
        fails.is_empty(),
        "{} of {n} cases failed:\n{}",
        fails.len(),
        fails.join("\n")
    );
}

#[test]
fn every_rule_has_positive_and_negative_cases() {
    let rules = warnings::builtin_rules();
    let by_id: BTreeMap<u32, &Rule> = rules.iter().map(|r| (r.id, r)).collect();
    let mut files: BTreeMap<u32, Vec<(String, String, Fixture)>> = BTreeMap::new();
    for (id, key, file, fx) in fixtures() {
        files.entry(id).or_default().push((key, file, fx));
    }
    let mut problems = Vec::new();
    for (id, fs) in &files {
        match by_id.get(id) {
            None => problems.push(format!("{}: no rule {id}", fs[0].1)),
            Some(_) if fs.len() > 1 => problems.push(format!("rule {id}: {} fixture files", fs.len())),
            Some(r) if fs[0].0 != r.key => problems.push(format!("{}: rule {id}'s key is {}", fs[0].1, r.key)),
            Some(_) => {}
        }
    }
    for r in &rules {
        let Some(fs) = files.get(&r.id) else {
            problems.push(format!("rule {} ({}) has no fixture file", r.id, r.key));
            continue;
        };
        let (_, file, fx) = &fs[0];
        let wants: Vec<Option<Colour>> = fx.case.iter().map(|c| expected(file, c)).collect();
        let mut needed = vec![(Some(r.colour), 1, "positive")];
        for e in &r.escalate {
            needed.push((Some(e.colour), 1, "escalation"));
        }
        needed.push((None, 2, "negative"));
        for (colour, min, what) in needed {
            let n = wants.iter().filter(|w| **w == colour).count();
            if n < min {
                problems.push(format!(
                    "{file}: rule {} needs {min} {what} case(s) expecting {}, has {n}",
                    r.id,
                    show(colour)
                ));
            }
        }
        let mut names = BTreeSet::new();
        for c in &fx.case {
            if !names.insert(c.name.as_str()) {
                problems.push(format!("{file}: two cases named {:?}", c.name));
            }
        }
    }
    for id in 1..=49 {
        if !by_id.contains_key(&id) {
            problems.push(format!("the built-in rules lack point {id}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A rules file of one rule with the given condition (the lines after `[rule.when]`).
fn one_rule(id: u32, when: &str) -> String {
    format!(
        r#"
[[rule]]
id = {id}
key = "r{id}"
group = "test"
name_zh = "测试"
name_en = "Test"
force = "solvency"
sources = ["court.cases"]
window = "12 months"
colour = "yellow"
evidence = "the records"
clears = "never"
[rule.when]
{when}
"#
    )
}

const EVENT: &str = "kind = \"event\"\ndatasets = [\"court.cases\"]";

#[test]
fn parse_rules_accepts_a_good_file() {
    let text = one_rule(1, EVENT)
        + &one_rule(
            2,
            "kind = \"feature\"\nid = \"sol_debt_ratio\"\nop = \"gt\"\nvalue = 0.9",
        );
    let rules = warnings::parse_rules(&text).expect("parses");
    assert_eq!(rules.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn parse_rules_rejects_an_unknown_indicator() {
    let text = one_rule(
        1,
        "kind = \"feature\"\nid = \"no_such_indicator\"\nop = \"gt\"\nvalue = 0.9",
    );
    let e = warnings::parse_rules(&text).unwrap_err();
    assert!(e.contains("unknown indicator no_such_indicator"), "{e}");
    // Also inside `any` and in an escalation.
    let nested = one_rule(
        1,
        "kind = \"any\"\n[[rule.when.of]]\nkind = \"feature_change\"\nid = \"nope\"\nop = \"gt\"\nvalue = 1.0\nmonths = 12",
    );
    assert!(warnings::parse_rules(&nested)
        .unwrap_err()
        .contains("unknown indicator nope"));
    let escalated = one_rule(1, EVENT)
        + "[[rule.escalate]]\ncolour = \"red\"\n[rule.escalate.when]\nkind = \"feature_pct\"\nid = \"nope\"\nop = \"gt\"\npct = 90.0\n";
    assert!(warnings::parse_rules(&escalated)
        .unwrap_err()
        .contains("unknown indicator nope"));
}

#[test]
fn parse_rules_rejects_duplicate_ids() {
    let text = one_rule(7, EVENT) + &one_rule(3, EVENT) + &one_rule(7, EVENT);
    let e = warnings::parse_rules(&text).unwrap_err();
    assert!(e.contains("duplicate rule id"), "{e}");
}

#[test]
fn parse_rules_rejects_an_unknown_condition_kind() {
    let e = warnings::parse_rules(&one_rule(1, "kind = \"moon_phase\"\nphase = \"full\"")).unwrap_err();
    assert!(e.contains("moon_phase"), "{e}");
    // And an unknown option of a known kind.
    assert!(warnings::parse_rules(&one_rule(1, &format!("{EVENT}\nwindow_days = 30"))).is_err());
}

fn warning(rule: u32, colour: Colour) -> Warning {
    Warning {
        rule,
        colour,
        since: None,
        clears_on: None,
        evidence: vec![1],
    }
}

#[test]
fn colour_of_is_the_worst_warning() {
    use Colour::*;
    assert_eq!(warnings::colour_of(&[]), None);
    assert_eq!(warnings::colour_of(&[warning(11, Blue)]), Some(Blue));
    assert_eq!(
        warnings::colour_of(&[warning(11, Blue), warning(3, Yellow)]),
        Some(Yellow)
    );
    assert_eq!(
        warnings::colour_of(&[warning(11, Blue), warning(1, Red), warning(3, Yellow)]),
        Some(Red)
    );
    assert_eq!(
        warnings::colour_of(&[warning(3, Yellow), warning(6, Yellow)]),
        Some(Yellow)
    );
}

/// An indicator computed alone (as rule 36 reads it a year back) equals the same indicator in the whole row,
/// on every case's firm, at its date and a year earlier.
#[test]
fn an_indicator_computed_alone_equals_the_whole_rows() {
    let (mut compared, mut present) = (0, 0);
    for (_, _, file, fx) in fixtures() {
        for case in &fx.case {
            let t = day(file.as_str(), case.as_of.as_deref().unwrap_or(&fx.as_of));
            let k = case
                .known_by
                .as_deref()
                .or(fx.known_by.as_deref())
                .map_or(t, |s| day(&file, s))
                .max(t);
            let firm = firm_of(&file, case, &raw_facts(&fx, case));
            for at in [t, data::month_end(data::last_complete_month(t) - 12)] {
                let row = features::compute_at(&firm, at, k);
                for i in 0..features::N {
                    let alone = features::value_at(&firm, at, k, i);
                    assert_eq!(
                        alone.map(f64::to_bits),
                        row.values[i].map(f64::to_bits),
                        "{file}: case {:?}: {} at {at}",
                        case.name,
                        features::IDS[i]
                    );
                    compared += 1;
                    present += usize::from(alone.is_some());
                }
            }
        }
    }
    assert!(
        compared > 10_000 && present > 1_000,
        "{compared} compared, {present} present"
    );
}
