//! The guarantee graph built from stored facts (credit::network::build_graph and analyse): only contracts in
//! force on T and known by K, each contract once although it is linked to both firms, borrowers outside the
//! district kept, persons pseudonymised, node numbering independent of input order, intra-group amounts now
//! and 12 months earlier, the red members a firm's view lists (its circle's and its neighbours', not its group's).

use xinyong_credit::data::{self, FirmData, Names, RawFact};
use xinyong_credit::network::{self, NetworkConfig};
use xinyong_credit::run;
use xinyong_network::NodeKind;

/// The n-th valid USCC of Shangyu (the organisation code's check digit must hold too).
fn uscc(n: u32) -> String {
    let mut found = 0;
    for j in 0..1_000_000u32 {
        let first17 = format!("91330604{:08}{}", 10_000_000 + j, "0");
        for c in ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'X'] {
            let mut f = first17.clone();
            f.pop();
            f.push(c);
            if let Ok(u) = xinyong_domain::uscc::Uscc::from_first17(&f) {
                if found == n {
                    return u.as_str().to_string();
                }
                found += 1;
                break;
            }
        }
    }
    panic!("no USCC {n}")
}

struct F<'a> {
    id: i64,
    uscc: &'a str,
    dataset: &'a str,
    source: &'a str,
    date: Option<&'a str>,
    fields: String,
    known_from: &'a str,
}

fn firm(uscc: &str, facts: &[F], names: &mut Names) -> FirmData {
    let mut f = FirmData::new(uscc);
    for x in facts.iter().filter(|x| x.uscc == uscc) {
        let raw = RawFact {
            fact_id: x.id,
            uscc: x.uscc.to_string(),
            source: x.source.to_string(),
            dataset: x.dataset.to_string(),
            period: None,
            event_date: x.date.map(str::to_string),
            end_date: None,
            fields: x.fields.clone(),
            known_from: x.known_from.to_string(),
            known_to: None,
        };
        f.add(&raw, names).expect("fact read");
    }
    f
}

fn reg(id: i64, u: &str, name: &str, parent: &str) -> F<'static> {
    let u: &'static str = Box::leak(u.to_string().into_boxed_str());
    F {
        id,
        uscc: u,
        dataset: "amr.registration",
        source: "amr",
        date: None,
        fields: format!(
            r#"{{"name":"{name}","industry":"3441","township":"330604001","status":"active","founded":"2015-07-01","reg_capital":5000000,"paid_in_capital":5000000,"legal_rep":"张三","legal_rep_id":"330604********123X","parent_id":"{parent}"}}"#
        ),
        known_from: "2016-01-01",
    }
}

fn guarantee(
    id: i64,
    borrower: &str,
    guarantor: &str,
    amount: f64,
    start: &str,
    end: &str,
    known: &'static str,
) -> F<'static> {
    let b: &'static str = Box::leak(borrower.to_string().into_boxed_str());
    let start_s: &'static str = Box::leak(start.to_string().into_boxed_str());
    F {
        id,
        uscc: b,
        dataset: "lender.bank.guarantees",
        source: "bank03",
        date: Some(start_s),
        fields: format!(
            r#"{{"id":"{borrower}","guarantor_id":"{guarantor}","contract_id":"C{id}","amount":{amount},"start":"{start}","end":"{end}","kind":"joint_liability"}}"#
        ),
        known_from: known,
    }
}

/// A, B, C in the district; D outside (a guarantor known only later); E outside (a borrower A guarantees).
fn world() -> (Vec<FirmData>, [String; 5]) {
    let [a, b, c, d, e] = [uscc(0), uscc(1), uscc(2), uscc(3), uscc(4)];
    let facts = vec![
        reg(1, &a, "甲公司", ""),
        reg(2, &b, "乙公司", &a),
        reg(3, &c, "丙公司", ""),
        F {
            id: 4,
            uscc: Box::leak(b.clone().into_boxed_str()),
            dataset: "amr.shareholders",
            source: "amr",
            date: None,
            fields: format!(r#"{{"holder_name":"甲公司","holder_type":"firm","holder_id":"{a}","share_ratio":0.6}}"#),
            known_from: "2016-01-01",
        },
        // A → B in force; C → B ended before T; D → B known only after T; A → C in force; A → E (outside).
        guarantee(10, &b, &a, 1_000_000.0, "2024-01-01", "2026-12-31", "2024-01-05"),
        guarantee(11, &b, &c, 700_000.0, "2023-01-01", "2025-03-31", "2023-01-05"),
        guarantee(12, &b, &d, 500_000.0, "2025-05-01", "2027-04-30", "2025-08-01"),
        guarantee(13, &c, &a, 300_000.0, "2025-01-01", "2026-06-30", "2025-01-05"),
        guarantee(14, &e, &a, 200_000.0, "2025-02-01", "2026-01-31", "2025-02-05"),
        // A second A → B contract begun within the last 12 months (intra-group: A holds 60 % of B).
        guarantee(15, &b, &a, 1_500_000.0, "2025-02-01", "2026-01-31", "2025-02-05"),
    ];
    let mut names = Names::default();
    let mut firms: Vec<FirmData> = [&a, &b, &c, &e].iter().map(|u| firm(u, &facts, &mut names)).collect();
    firms.sort_by(|x, y| x.uscc.cmp(&y.uscc));
    run::link_guarantees(&mut firms);
    for f in &mut firms {
        f.finish();
    }
    // As the loader does: firms without a registration (E) are not loaded.
    firms.retain(|f| !f.registrations.is_empty());
    (firms, [a, b, c, d, e])
}

fn edges(g: &xinyong_network::Graph) -> Vec<(String, String, f64)> {
    let mut v: Vec<(String, String, f64)> = g
        .guarantees
        .iter()
        .map(|e| {
            (
                g.nodes[e.guarantor as usize].id.clone(),
                g.nodes[e.borrower as usize].id.clone(),
                e.amount,
            )
        })
        .collect();
    v.sort_by(|x, y| (&x.0, &x.1, x.2.to_bits()).cmp(&(&y.0, &y.1, y.2.to_bits())));
    v
}

#[test]
fn contracts_in_force_and_known_each_once() {
    let (firms, [a, b, c, d, e]) = world();
    let cfg = NetworkConfig::builtin();
    let t = data::day("2025-06-30").unwrap();
    let g = network::build_graph(&firms, &[], t, t, &cfg);
    let mut want: Vec<(String, String, f64)> = vec![
        (a.clone(), b.clone(), 1_000_000.0),
        (a.clone(), b.clone(), 1_500_000.0),
        (a.clone(), c.clone(), 300_000.0),
        (a.clone(), e.clone(), 200_000.0),
    ];
    want.sort_by(|x, y| (&x.0, &x.1, x.2.to_bits()).cmp(&(&y.0, &y.1, y.2.to_bits())));
    assert_eq!(
        edges(&g),
        want,
        "ended (C → B) and later-known (D → B) contracts are out; each contract once"
    );
    assert_eq!(g.nodes[g.find(&e).unwrap() as usize].kind, NodeKind::Outside);
    assert!(g.find(&d).is_none(), "D is not known on T");
    // Known later (the same date as known on 2025-09-01): D → B is in, D an outside firm.
    let g2 = network::build_graph(&firms, &[], t, data::day("2025-09-01").unwrap(), &cfg);
    assert!(edges(&g2).contains(&(d.clone(), b.clone(), 500_000.0)));
    assert_eq!(g2.nodes[g2.find(&d).unwrap() as usize].kind, NodeKind::Outside);
    // Persons are pseudonyms: no id number (masked or not) and no name in any node id.
    for n in &g.nodes {
        assert!(!n.id.contains('*') && !n.id.contains("张三"), "{}", n.id);
    }
    assert!(g.nodes.iter().any(|n| n.kind == NodeKind::Person));
}

#[test]
fn numbering_does_not_depend_on_input_order() {
    let (mut firms, _) = world();
    let cfg = NetworkConfig::builtin();
    let t = data::day("2025-06-30").unwrap();
    let g1 = network::build_graph(&firms, &[], t, t, &cfg);
    firms.reverse();
    let g2 = network::build_graph(&firms, &[], t, t, &cfg);
    let ids = |g: &xinyong_network::Graph| g.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&g1), ids(&g2));
    assert_eq!(edges(&g1), edges(&g2));
}

#[test]
fn intra_group_guarantees_now_and_a_year_earlier() {
    let (firms, [a, b, ..]) = world();
    let cfg = NetworkConfig::builtin();
    let t = data::day("2025-06-30").unwrap();
    let run = network::analyse(&firms, &[], t, t, &cfg);
    // A holds 60 % of B (and is its parent): one corporate group. In force now: 1.0 m + 1.5 m; on 2024-06-30
    // only the first contract had begun.
    for u in [&a, &b] {
        let nf = &run.firms[u.as_str()];
        assert_eq!(nf.intra_group_amount, 2_500_000.0, "{u}");
        assert_eq!(nf.intra_group_amount_12m_ago, 1_000_000.0, "{u}");
        assert_eq!(nf.intra_group_contracts.len(), 2);
        assert!(
            nf.patterns.contains(&xinyong_network::Pattern::Group),
            "{u}: {:?}",
            nf.patterns
        );
    }
    assert_eq!(
        network::same_day_months_back(data::day("2024-02-29").unwrap(), 12),
        data::day("2023-02-28").unwrap()
    );
    assert_eq!(network::same_day_months_back(t, 12), data::day("2024-06-30").unwrap());
}

/// A mutual pair X ↔ Y, and Z guaranteeing X: one guarantee group whose circle is X and Y. A red Z is X's red
/// neighbour, and in no member's circle list (each firm's view lists the red members of its circle and its
/// neighbourhood, not of its whole group); a red Y is in X's circle list and a red neighbour too.
#[test]
fn red_members_of_the_circle_and_of_the_neighbourhood() {
    let [x, y, z] = [uscc(10), uscc(11), uscc(12)];
    let facts = vec![
        reg(1, &x, "戊公司", ""),
        reg(2, &y, "己公司", ""),
        reg(3, &z, "庚公司", ""),
        // X → Y and Y → X (a mutual pair), Z → X.
        guarantee(10, &y, &x, 1_000_000.0, "2025-01-01", "2026-12-31", "2025-01-05"),
        guarantee(11, &x, &y, 1_000_000.0, "2025-01-01", "2026-12-31", "2025-01-05"),
        guarantee(12, &x, &z, 500_000.0, "2025-01-01", "2026-12-31", "2025-01-05"),
    ];
    let mut names = Names::default();
    let mut firms: Vec<FirmData> = [&x, &y, &z].iter().map(|u| firm(u, &facts, &mut names)).collect();
    firms.sort_by(|a, b| a.uscc.cmp(&b.uscc));
    run::link_guarantees(&mut firms);
    for f in &mut firms {
        f.finish();
    }
    let cfg = NetworkConfig::builtin();
    let t = data::day("2025-06-30").unwrap();
    let mut g = network::build_graph(&firms, &[], t, t, &cfg);
    let comps = xinyong_network::components(&g);
    let node = |g: &xinyong_network::Graph, u: &str| g.find(u).expect("in the graph");
    assert_eq!(comps.scc_of[node(&g, &x) as usize], comps.scc_of[node(&g, &y) as usize]);
    assert_ne!(comps.scc_of[node(&g, &x) as usize], comps.scc_of[node(&g, &z) as usize]);
    let view = |g: &xinyong_network::Graph, u: &str| {
        let p: Vec<f64> = g.nodes.iter().map(|n| n.pd).collect();
        let mut nf = network::NetFirm::default();
        network::guarantee_part(g, &comps, node(g, u), &p, &p, &cfg, &mut nf);
        nf
    };
    let zi = node(&g, &z) as usize;
    g.nodes[zi].colour = 3;
    let (vx, vy) = (view(&g, &x), view(&g, &y));
    assert!(
        vx.circle_red.is_empty() && vy.circle_red.is_empty(),
        "Z is not in the circle"
    );
    assert_eq!(vx.neighbours_red, std::slice::from_ref(&z));
    assert!(vy.neighbours_red.is_empty(), "Z and Y are not linked");
    let yi = node(&g, &y) as usize;
    g.nodes[yi].colour = 3;
    let vx = view(&g, &x);
    assert_eq!(vx.circle_red, std::slice::from_ref(&y));
    let mut reds = vx.neighbours_red.clone();
    reds.sort();
    let mut want = vec![y.clone(), z.clone()];
    want.sort();
    assert_eq!(reds, want);
    assert!(view(&g, &y).circle_red.is_empty(), "a firm is not in its own list");
}
