//! The world: firms, persons, loans and guarantee circles, and the hidden monthly health process.
//!
//! Each firm has a baseline log-odds of default (from its industry, size and age, plus a firm effect)
//! and a monthly AR(1) deviation driven by firm noise, its industry's shock and contagion from the
//! firms it guarantees. A borrower defaults (stops paying) with the month's hazard; the lenders' feeds
//! show it as 90+ days overdue three months later. Everything observable is driven by this process.

use crate::names;
use crate::rng::stream;
use crate::GenConfig;
use chrono::{Datelike, Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use xinyong_domain::Uscc;

/// An industry sector of the district, with the GB/T 4754 classes firms in it are registered under.
pub struct Sector {
    pub key: &'static str,
    pub word: &'static str,
    pub classes: &'static [&'static str],
    pub weight: f64,
    /// Towns where the sector clusters (block economy), by township code suffix.
    pub cluster_towns: &'static [&'static str],
    pub cluster: &'static str,
    pub risk: f64,
    /// kWh of power per yuan of revenue.
    pub power_per_yuan: f64,
    pub water_per_yuan: f64,
    pub manufacturing: bool,
    /// Peak-to-trough seasonality amplitude and peak month.
    pub season: (f64, u32),
}

pub const SECTORS: &[Sector] = &[
    Sector {
        key: "chemicals",
        word: "化工",
        classes: &["2661", "2662", "2614"],
        weight: 0.11,
        cluster_towns: &["112", "111", "004"],
        cluster: "杭州湾上虞经济技术开发区",
        risk: 0.1,
        power_per_yuan: 0.35,
        water_per_yuan: 0.004,
        manufacturing: true,
        season: (0.08, 10),
    },
    Sector {
        key: "umbrellas",
        word: "伞业",
        classes: &["4119"],
        weight: 0.10,
        cluster_towns: &["007"],
        cluster: "崧厦伞艺小镇",
        risk: 0.25,
        power_per_yuan: 0.08,
        water_per_yuan: 0.0005,
        manufacturing: true,
        season: (0.30, 4),
    },
    Sector {
        key: "lighting",
        word: "照明电器",
        classes: &["3872"],
        weight: 0.08,
        cluster_towns: &["004", "104"],
        cluster: "上虞照明电器产业集群",
        risk: 0.2,
        power_per_yuan: 0.10,
        water_per_yuan: 0.0006,
        manufacturing: true,
        season: (0.15, 11),
    },
    Sector {
        key: "machinery",
        word: "机械",
        classes: &["3484", "3441"],
        weight: 0.12,
        cluster_towns: &["001", "002"],
        cluster: "曹娥江机械装备产业集群",
        risk: 0.0,
        power_per_yuan: 0.12,
        water_per_yuan: 0.0008,
        manufacturing: true,
        season: (0.10, 6),
    },
    Sector {
        key: "auto_parts",
        word: "汽车配件",
        classes: &["3670"],
        weight: 0.07,
        cluster_towns: &["003", "001"],
        cluster: "上虞汽配产业园",
        risk: 0.05,
        power_per_yuan: 0.13,
        water_per_yuan: 0.0008,
        manufacturing: true,
        season: (0.10, 9),
    },
    Sector {
        key: "textiles",
        word: "纺织",
        classes: &["1752", "1761", "1713"],
        weight: 0.09,
        cluster_towns: &["006", "109"],
        cluster: "小越纺织印染集聚区",
        risk: 0.3,
        power_per_yuan: 0.20,
        water_per_yuan: 0.006,
        manufacturing: true,
        season: (0.12, 9),
    },
    Sector {
        key: "construction",
        word: "建设工程",
        classes: &["4710", "4910"],
        weight: 0.07,
        cluster_towns: &[],
        cluster: "",
        risk: 0.35,
        power_per_yuan: 0.02,
        water_per_yuan: 0.0005,
        manufacturing: false,
        season: (0.25, 12),
    },
    Sector {
        key: "trade",
        word: "贸易",
        classes: &["5169", "5179", "5211"],
        weight: 0.21,
        cluster_towns: &[],
        cluster: "",
        risk: 0.15,
        power_per_yuan: 0.01,
        water_per_yuan: 0.0001,
        manufacturing: false,
        season: (0.15, 1),
    },
    Sector {
        key: "services",
        word: "服务",
        classes: &["6130", "7291", "7212"],
        weight: 0.15,
        cluster_towns: &[],
        cluster: "",
        risk: 0.1,
        power_per_yuan: 0.03,
        water_per_yuan: 0.0004,
        manufacturing: false,
        season: (0.2, 8),
    },
];

/// The mean monthly log-odds of default before firm, sector, size and age effects.
pub const BASE_LOGODDS: f64 = -7.7;
/// The spread of the firm effect on the log-odds.
pub const FIRM_SIGMA: f64 = 1.2;
/// How much a sector shock moves its firms.
pub const SHOCK_WEIGHT: f64 = 0.22;

/// Lender kinds: the sources that deliver loans.
pub const BANKS: usize = 20;
pub const MLCS: usize = 5;
pub const GCS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Size {
    Large,
    Medium,
    Small,
    Micro,
}

impl Size {
    pub fn code(self) -> &'static str {
        match self {
            Size::Large => "large",
            Size::Medium => "medium",
            Size::Small => "small",
            Size::Micro => "micro",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub masked_id: String,
}

#[derive(Debug, Clone, Copy)]
pub enum Holder {
    Person(usize),
    Firm(usize),
}

#[derive(Debug, Clone)]
pub struct Firm {
    pub uscc: Uscc,
    /// The 15-digit registration number of firms registered before the USCC (2015-10).
    pub reg_no: Option<String>,
    pub name: String,
    pub former_names: Vec<String>,
    pub legal_rep: usize,
    pub shareholders: Vec<(Holder, f64)>,
    pub founded: NaiveDate,
    pub reg_capital_wan: f64,
    pub paid_in_wan: f64,
    pub sector: usize,
    pub industry: &'static str,
    pub township: String,
    pub address: String,
    pub size: Size,
    /// Typical monthly revenue in yuan.
    pub scale: f64,
    pub employees: u32,
    pub parent: Option<usize>,
    pub in_district: bool,
    pub exporter: bool,
    pub above_scale: bool,
    pub uses_gas: bool,
    pub borrower: bool,
    /// Baseline monthly log-odds of default.
    pub baseline: f64,
    /// Month index of deregistration, if within the horizon.
    pub dereg_month: Option<usize>,
    pub dereg_status: &'static str,
    /// The source id that guarantees some of its loans (a financing guarantee firm), if any.
    pub gc: Option<usize>,
}

/// A credit facility: a loan renewed every 12 months under a new loan id.
#[derive(Debug, Clone)]
pub struct Facility {
    pub lender: String,
    pub borrower: usize,
    pub amount: f64,
    /// Month index (may be negative: the facility predates the horizon).
    pub start: i64,
    pub rate: f64,
    /// Guarantee relations (guarantor firm, kind) backing it.
    pub guarantors: Vec<(usize, &'static str)>,
    pub gc_guarantee: Option<usize>,
}

/// A guarantee relation used to build contracts: guarantor → borrower.
#[derive(Debug, Clone, Copy)]
pub struct Relation {
    pub guarantor: usize,
    pub borrower: usize,
    pub kind: &'static str,
    pub pattern: &'static str,
}

pub struct World {
    pub cfg: GenConfig,
    pub firms: Vec<Firm>,
    pub persons: Vec<Person>,
    pub facilities: Vec<Facility>,
    pub relations: Vec<Relation>,
    /// First day of each simulated month.
    pub months: Vec<NaiveDate>,
    /// Hidden state per firm per month: the deviation x and the monthly hazard.
    pub x: Vec<Vec<f32>>,
    pub hazard: Vec<Vec<f32>>,
    /// Relative activity (revenue multiplier) per firm per month; 0 when not operating.
    pub activity: Vec<Vec<f32>>,
    /// The date a defaulting borrower stopped paying.
    pub default_date: Vec<Option<NaiveDate>>,
    pub founded_month: Vec<i64>,
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Month index of a date relative to the first simulated month.
pub fn month_index(start: NaiveDate, d: NaiveDate) -> i64 {
    (d.year() as i64 - start.year() as i64) * 12 + d.month() as i64 - start.month() as i64
}

pub fn add_months(d: NaiveDate, m: i64) -> NaiveDate {
    let total = d.year() as i64 * 12 + d.month0() as i64 + m;
    NaiveDate::from_ymd_opt((total.div_euclid(12)) as i32, (total.rem_euclid(12)) as u32 + 1, 1).unwrap_or(d)
}

pub fn month_end(first: NaiveDate) -> NaiveDate {
    add_months(first, 1) - Duration::days(1)
}

fn org_body(rng: &mut impl Rng, founded_year: i32) -> String {
    const NEW: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    if founded_year >= 2016 {
        let mut s = String::from("MA2");
        for _ in 0..5 {
            s.push(NEW[rng.gen_range(0..NEW.len())] as char);
        }
        s
    } else {
        format!("{:08}", rng.gen_range(14_000_000u32..79_999_999))
    }
}

/// A valid USCC for a firm registered in `region`, founded in `year`.
fn make_uscc(rng: &mut impl Rng, region: &str, year: i32) -> Uscc {
    loop {
        let body = org_body(rng, year);
        let Some(oc) = xinyong_domain::orgcode::check_char(body.as_bytes()) else {
            continue;
        };
        if let Ok(u) = Uscc::from_first17(&format!("91{region}{body}{oc}")) {
            return u;
        }
    }
}

/// ISO 7064 MOD 11,10 check digit for the 15-digit registration number.
pub fn regno_check(first14: &str) -> char {
    let mut p = 10u32;
    for c in first14.bytes() {
        let mut s = (p + (c - b'0') as u32) % 10;
        if s == 0 {
            s = 10;
        }
        p = (s * 2) % 11;
    }
    let c = (11 - p) % 10;
    char::from_digit(c, 10).unwrap_or('0')
}

impl World {
    pub fn build(cfg: &GenConfig) -> World {
        let start = NaiveDate::from_ymd_opt(cfg.end_year - cfg.years as i32 + 1, 1, 1).expect("start");
        let months: Vec<NaiveDate> = (0..cfg.months() as i64).map(|m| add_months(start, m)).collect();
        let towns = xinyong_domain::region::townships_of(xinyong_domain::region::DISTRICT_CODE);
        let zj_counties: Vec<String> = xinyong_domain::region::counties_in_province("33")
            .into_iter()
            .filter(|r| r.code != "330604")
            .map(|r| r.code.clone())
            .collect();
        let total_w: f64 = SECTORS.iter().map(|s| s.weight).sum();
        let n = cfg.enterprises;
        let n_outside = (n / 16).max(GCS + 2);
        let mut persons: Vec<Person> = Vec::new();
        let mut firms: Vec<Firm> = Vec::with_capacity(n + n_outside);
        let mut prng = stream(cfg.seed, "persons", 0, 0);
        let mut used = std::collections::HashSet::new();
        for i in 0..n + n_outside {
            let mut rng = stream(cfg.seed, "firm", i as u64, 0);
            let in_district = i < n;
            // Sector by weight.
            let mut u = rng.gen::<f64>() * total_w;
            let mut sector = 0;
            for (k, s) in SECTORS.iter().enumerate() {
                if u < s.weight {
                    sector = k;
                    break;
                }
                u -= s.weight;
                sector = k;
            }
            let sec = &SECTORS[sector];
            let industry = sec.classes[rng.gen_range(0..sec.classes.len())];
            // Founding: a long tail of old firms; some founded within the horizon.
            let age_years: f64 = LogNormal::<f64>::new(2.0, 0.7).expect("ln").sample(&mut rng).min(40.0);
            let mut founded = start + Duration::days(((cfg.years as f64 * 0.8 - age_years) * 365.25) as i64);
            founded = founded.min(months[months.len() - 1]);
            if founded.year() < 1985 {
                founded =
                    NaiveDate::from_ymd_opt(1985 + rng.gen_range(0..10), 1 + rng.gen_range(0..12), 1).unwrap_or(start);
            }
            let founded = founded + Duration::days(rng.gen_range(0..28));
            let region = if in_district {
                "330604".to_string()
            } else {
                zj_counties[rng.gen_range(0..zj_counties.len())].clone()
            };
            let uscc = loop {
                let u = make_uscc(&mut rng, &region, founded.year());
                if used.insert(u) {
                    break u;
                }
            };
            let reg_no = (founded.year() < 2015 && in_district).then(|| {
                let r = if founded.year() < 2013 { "330682" } else { "330604" };
                let first14 = format!("{r}{:08}", rng.gen_range(0..100_000_000u32));
                let c = regno_check(&first14);
                format!("{first14}{c}")
            });
            // Scale: heavy-tailed monthly revenue.
            let scale: f64 = LogNormal::<f64>::new(13.0, 1.35)
                .expect("ln")
                .sample(&mut rng)
                .clamp(20_000.0, 3.0e9);
            let size = match scale * 12.0 {
                r if r >= 4.0e8 => Size::Large,
                r if r >= 2.0e7 => Size::Medium,
                r if r >= 3.0e6 => Size::Small,
                _ => Size::Micro,
            };
            let employees = ((scale * 12.0 / 450_000.0) * rng.gen_range(0.6..1.5)).round().max(1.0) as u32;
            let reg_capital_wan: f64 = (LogNormal::<f64>::new(0.0, 0.6).expect("ln").sample(&mut rng) * scale * 12.0
                / 40_000.0)
                .clamp(3.0, 500_000.0)
                .round();
            let paid_in_wan = (reg_capital_wan * rng.gen_range(0.2..1.0f64)).round();
            let town = if !sec.cluster_towns.is_empty() && rng.gen_bool(0.65) {
                let suffix = sec.cluster_towns[rng.gen_range(0..sec.cluster_towns.len())];
                towns
                    .iter()
                    .find(|t| t.code.ends_with(suffix))
                    .copied()
                    .unwrap_or(towns[0])
            } else {
                towns[rng.gen_range(0..towns.len())]
            };
            let branch = in_district && i > 50 && rng.gen_bool(0.04);
            let parent = branch.then(|| rng.gen_range(0..i.min(n)));
            let place = if rng.gen_bool(0.5) {
                "绍兴市上虞区"
            } else {
                "上虞"
            };
            let name = names::firm(&mut rng, if in_district { place } else { "浙江" }, sec.word, branch);
            let former_names = if rng.gen_bool(0.1) {
                vec![names::firm(&mut rng, "上虞市", sec.word, false)]
            } else {
                vec![]
            };
            let address = format!(
                "浙江省绍兴市上虞区{}{}{}号",
                town.name,
                if sec.cluster.is_empty() || !rng.gen_bool(0.5) {
                    ""
                } else {
                    sec.cluster
                },
                rng.gen_range(1..999)
            );
            // Persons: a new legal representative mostly; some control several firms.
            let legal_rep = if !persons.is_empty() && prng.gen_bool(0.12) {
                prng.gen_range(0..persons.len())
            } else {
                persons.push(Person {
                    name: names::person(&mut prng),
                    masked_id: names::masked_id(&mut prng),
                });
                persons.len() - 1
            };
            let mut shareholders = vec![(Holder::Person(legal_rep), 1.0)];
            let extra = rng.gen_range(0..3);
            for _ in 0..extra {
                persons.push(Person {
                    name: names::person(&mut prng),
                    masked_id: names::masked_id(&mut prng),
                });
                shareholders.push((Holder::Person(persons.len() - 1), rng.gen_range(0.1..0.6)));
            }
            let tot: f64 = shareholders.iter().map(|s| s.1).sum();
            for s in &mut shareholders {
                s.1 = (s.1 / tot * 10_000.0).round() / 100.0;
            }
            let age_effect = if age_years < 2.0 {
                0.5
            } else if age_years > 10.0 {
                -0.3
            } else {
                0.0
            };
            let size_effect = match size {
                Size::Large => -0.8,
                Size::Medium => -0.3,
                Size::Small => 0.0,
                Size::Micro => 0.35,
            };
            let firm_effect: f64 = Normal::new(0.0, FIRM_SIGMA).expect("n").sample(&mut rng);
            let baseline = BASE_LOGODDS + sec.risk + age_effect + size_effect + firm_effect;
            let borrower = in_district
                && !branch
                && rng.gen_bool(match size {
                    Size::Large => 0.9,
                    Size::Medium => 0.85,
                    Size::Small => 0.7,
                    Size::Micro => 0.45,
                });
            firms.push(Firm {
                uscc,
                reg_no,
                name,
                former_names,
                legal_rep,
                shareholders,
                founded,
                reg_capital_wan,
                paid_in_wan,
                sector,
                industry,
                township: town.code.clone(),
                address,
                size,
                scale,
                employees,
                parent,
                in_district,
                exporter: sec.manufacturing && rng.gen_bool(0.35),
                above_scale: sec.manufacturing && scale * 12.0 >= 2.0e7,
                uses_gas: sec.manufacturing && rng.gen_bool(0.5),
                borrower,
                baseline,
                dereg_month: None,
                dereg_status: "active",
                gc: None,
            });
        }
        // Group circles: some larger firms hold subsidiaries.
        let mut grng = stream(cfg.seed, "groups", 0, 0);
        let mut group_of: Vec<Option<usize>> = vec![None; firms.len()];
        for p in 0..n {
            if firms[p].parent.is_some() || firms[p].size == Size::Micro || !grng.gen_bool(0.06) {
                continue;
            }
            let k = grng.gen_range(1..4);
            for _ in 0..k {
                let s = grng.gen_range(0..n);
                if s != p && group_of[s].is_none() && firms[s].parent.is_none() && group_of[p].is_none() {
                    group_of[s] = Some(p);
                    let share = grng.gen_range(51.0..100.0f64).round();
                    firms[s].shareholders.insert(0, (Holder::Firm(p), share));
                    let rest: f64 = 100.0 - share;
                    let m = firms[s].shareholders.len() - 1;
                    for h in firms[s].shareholders.iter_mut().skip(1) {
                        h.1 = (rest / m as f64 * 100.0).round() / 100.0;
                    }
                }
            }
        }
        // Outside firms also hold stakes in some district firms (province-wide relations).
        for firm in firms.iter_mut().take(n) {
            if grng.gen_bool(0.03) {
                let o = n + grng.gen_range(GCS..n_outside);
                firm.shareholders.push((Holder::Firm(o), 5.0));
            }
        }
        let borrower: Vec<bool> = firms.iter().map(|f| f.borrower).collect();
        let relations = build_relations(cfg.seed, &borrower, &group_of, n, n_outside);
        let facilities = build_facilities(cfg, &mut firms, &relations, n);
        let mut w = World {
            cfg: cfg.clone(),
            x: vec![vec![0.0; months.len()]; firms.len()],
            hazard: vec![vec![0.0; months.len()]; firms.len()],
            activity: vec![vec![0.0; months.len()]; firms.len()],
            default_date: vec![None; firms.len()],
            founded_month: firms.iter().map(|f| month_index(start, f.founded)).collect(),
            firms,
            persons,
            facilities,
            relations,
            months,
        };
        w.simulate();
        w
    }

    /// Whether firm `i` operates (is registered and not yet deregistered) in month `m`.
    pub fn operating(&self, i: usize, m: usize) -> bool {
        self.founded_month[i] <= m as i64 && self.firms[i].dereg_month.is_none_or(|d| m < d)
    }

    /// Month index of the default, if any.
    pub fn default_month(&self, i: usize) -> Option<usize> {
        self.default_date[i].map(|d| month_index(self.months[0], d) as usize)
    }

    fn simulate(&mut self) {
        let mut rng = stream(self.cfg.seed, "sim", 0, 0);
        let nm = self.months.len();
        let nf = self.firms.len();
        let mut x = vec![0.0f64; nf];
        let mut shock = vec![0.0f64; SECTORS.len()];
        let mut push = vec![0.0f64; nf];
        // Guarantors of each borrower, with the guaranteed share of the guarantor's own scale.
        let mut guarantors_of: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nf];
        for f in &self.facilities {
            for &(g, _) in &f.guarantors {
                let weight = (f.amount / (self.firms[g].scale * 12.0)).min(2.0);
                guarantors_of[f.borrower].push((g, weight));
            }
        }
        let noise = Normal::new(0.0, 1.0).expect("n");
        for m in 0..nm {
            for s in shock.iter_mut() {
                *s = 0.85 * *s + 0.25 * noise.sample(&mut rng);
            }
            // A regional downturn in the middle of the horizon, as 2018–19 was for Zhejiang SMEs.
            let cycle = 0.35 * ((m as f64 / nm as f64) * std::f64::consts::PI * 2.0).sin();
            let mut new_defaults = Vec::new();
            for i in 0..nf {
                let e = noise.sample(&mut rng);
                let u: f64 = rng.gen();
                let v: f64 = rng.gen();
                if !self.operating(i, m) {
                    continue;
                }
                let f = &self.firms[i];
                x[i] = 0.9 * x[i] + 0.32 * e + SHOCK_WEIGHT * shock[f.sector] + push[i];
                push[i] = 0.0;
                let z = f.baseline + x[i] - cycle;
                let h = sigmoid(z);
                self.x[i][m] = x[i] as f32;
                self.hazard[i][m] = h as f32;
                let defaulted = self.default_date[i].is_some();
                let season = {
                    let (amp, peak) = SECTORS[f.sector].season;
                    1.0 + amp * ((m as f64 % 12.0 + 1.0 - peak as f64) / 12.0 * std::f64::consts::TAU).cos()
                };
                let mut act = season * (-0.45 * x[i].max(0.0) - 0.08 * x[i]).exp() * (1.0 + 0.06 * e);
                if let Some(dm) = self.default_month(i) {
                    act *= 0.45 * 0.93f64.powi((m - dm.min(m)) as i32);
                }
                self.activity[i][m] = act.max(0.0) as f32;
                if f.borrower && !defaulted && u < h {
                    let day = 1 + (v * 27.0) as u32;
                    self.default_date[i] = NaiveDate::from_ymd_opt(self.months[m].year(), self.months[m].month(), day);
                    new_defaults.push(i);
                }
            }
            // Contagion: a borrower's default raises its guarantors' distress, weighted by exposure.
            for d in new_defaults {
                for &(g, weight) in &guarantors_of[d] {
                    push[g] += 0.9 + 1.2 * weight;
                }
            }
        }
        // Deregistrations: defaulted firms are often revoked or deregistered 9–30 months later;
        // healthy firms close at a low rate.
        for i in 0..nf {
            let mut r = stream(self.cfg.seed, "dereg", i as u64, 0);
            let dm = self.default_month(i);
            let (when, status) = match dm {
                Some(d) if r.gen_bool(0.55) => (
                    d + r.gen_range(9..30),
                    if r.gen_bool(0.5) { "revoked" } else { "deregistered" },
                ),
                _ if r.gen_bool(0.004 * self.cfg.years as f64) && !self.firms[i].borrower => {
                    (r.gen_range(0..nm), "deregistered")
                }
                _ => continue,
            };
            if when < nm && (when as i64) > self.founded_month[i] {
                self.firms[i].dereg_month = Some(when);
                self.firms[i].dereg_status = status;
                for m in when..nm {
                    self.activity[i][m] = 0.0;
                }
            }
        }
    }

    /// The hidden probability that firm `i` defaults within 12 months from month `m`, from its state:
    /// the AR(1) deviation decays towards zero by 0.9 a month.
    pub fn pd12(&self, i: usize, m: usize) -> f64 {
        let f = &self.firms[i];
        let x = self.x[i][m] as f64;
        let nm = self.months.len();
        let mut survive = 1.0;
        for k in 0..12 {
            let t = (m + k).min(nm - 1);
            let cycle = 0.35 * ((t as f64 / nm as f64) * std::f64::consts::PI * 2.0).sin();
            survive *= 1.0 - sigmoid(f.baseline + 0.9f64.powi(k as i32) * x - cycle);
        }
        1.0 - survive
    }
}

/// Adds the relation guarantor → borrower.
fn link(rel: &mut Vec<Relation>, guarantor: usize, borrower: usize, kind: &'static str, pattern: &'static str) {
    rel.push(Relation {
        guarantor,
        borrower,
        kind,
        pattern,
    });
}

/// The guarantee relations among `n` district firms (and `n_outside` outside firms after them): circles of
/// every pattern over a shuffle of the borrowers, and group circles of parents and subsidiaries. Shared with
/// `graph::generate` (`xinyong gen --graph-only`), so that both have the same structure.
pub fn build_relations(
    seed: u64,
    borrower: &[bool],
    group_of: &[Option<usize>],
    n: usize,
    n_outside: usize,
) -> Vec<Relation> {
    let mut rng = stream(seed, "circles", 0, 0);
    let mut borrowers: Vec<usize> = (0..n).filter(|&i| borrower[i]).collect();
    borrowers.shuffle(&mut rng);
    let mut rel = Vec::new();
    let mut it = borrowers.into_iter().peekable();
    let take = |k: usize, it: &mut std::iter::Peekable<std::vec::IntoIter<usize>>| -> Vec<usize> {
        it.by_ref().take(k).collect()
    };
    loop {
        let r: f64 = rng.gen();
        if it.peek().is_none() {
            break;
        }
        if r < 0.10 {
            let g = take(2, &mut it);
            if g.len() == 2 {
                link(&mut rel, g[0], g[1], "joint_liability", "mutual");
                link(&mut rel, g[1], g[0], "joint_liability", "mutual");
            }
        } else if r < 0.16 {
            let k = rng.gen_range(3..7);
            let g = take(k, &mut it);
            for w in g.windows(2) {
                link(&mut rel, w[0], w[1], "joint_liability", "chain");
            }
        } else if r < 0.20 {
            let k = rng.gen_range(3..6);
            let g = take(k, &mut it);
            for j in 0..g.len() {
                link(&mut rel, g[j], g[(j + 1) % g.len()], "joint_liability", "cycle");
            }
        } else if r < 0.24 {
            let k = rng.gen_range(4..9);
            let g = take(k, &mut it);
            if let Some((&hub, rest)) = g.split_first() {
                for &b in rest {
                    link(&mut rel, hub, b, "single", "star");
                }
            }
        } else if r < 0.28 {
            let k = rng.gen_range(3..6);
            let g = take(k, &mut it);
            for &a in &g {
                for &b in &g {
                    if a != b {
                        link(&mut rel, a, b, "joint_group", "joint");
                    }
                }
            }
        } else if r < 0.33 {
            let g = take(1, &mut it);
            for &b in &g {
                let o = n + rng.gen_range(GCS..n_outside);
                link(&mut rel, o, b, "joint_liability", "outside");
            }
        } else {
            // Unguaranteed (credit or collateral loans).
            take(1, &mut it);
        }
    }
    // Group circles: parents and subsidiaries guarantee one another.
    for (s, p) in group_of.iter().enumerate() {
        if let Some(p) = *p {
            if borrower[s] && borrower[p] {
                link(&mut rel, p, s, "joint_liability", "group");
                if rng.gen_bool(0.6) {
                    link(&mut rel, s, p, "joint_liability", "group");
                }
            }
        }
    }
    rel
}

fn build_facilities(cfg: &GenConfig, firms: &mut [Firm], rel: &[Relation], n: usize) -> Vec<Facility> {
    let mut by_borrower: Vec<Vec<(usize, &'static str)>> = vec![Vec::new(); firms.len()];
    for r in rel {
        by_borrower[r.borrower].push((r.guarantor, r.kind));
    }
    let mut out = Vec::new();
    for (i, bg) in by_borrower.iter().enumerate().take(n) {
        if !firms[i].borrower {
            continue;
        }
        let mut rng = stream(cfg.seed, "facility", i as u64, 0);
        let k = 1 + rng.gen_range(0..3) + usize::from(firms[i].size == Size::Large);
        for j in 0..k {
            let r: f64 = rng.gen();
            let lender = if r < 0.82 {
                // Local banks lend more.
                let b = if rng.gen_bool(0.4) {
                    16 + rng.gen_range(0..4)
                } else {
                    1 + rng.gen_range(0..20)
                };
                format!("bank{b:02}")
            } else if r < 0.93 {
                format!("mlc{:02}", 1 + rng.gen_range(0..MLCS))
            } else {
                "pfc".to_string()
            };
            let bank = lender.starts_with("bank");
            let amount =
                ((firms[i].scale * 12.0 * rng.gen_range(0.05..0.35) / 10_000.0).round() * 10_000.0).max(50_000.0);
            let start = rng.gen_range(-11..cfg.months() as i64 / 2);
            let rate = if bank {
                rng.gen_range(3.6..6.5f64)
            } else if lender == "pfc" {
                rng.gen_range(0.8..1.5)
            } else {
                rng.gen_range(8.0..18.0)
            };
            let guarantors = if bank && (j == 0 || rng.gen_bool(0.5)) {
                bg.clone()
            } else {
                Vec::new()
            };
            let gc_guarantee = (bank && rng.gen_bool(0.08)).then(|| rng.gen_range(0..GCS));
            out.push(Facility {
                lender,
                borrower: i,
                amount,
                start,
                rate: (rate * 100.0).round() / 100.0,
                guarantors,
                gc_guarantee,
            });
        }
    }
    out
}
