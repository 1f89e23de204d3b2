//! The search test set as data: `fixtures/search/firms.tsv` (a register) and `fixtures/search/queries.tsv`
//! (each query, the firm that must come first — or `-` for none — and how it must match).

use xinyong_server::search::{Firm, SearchIndex};

fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
}

fn index() -> SearchIndex {
    let firms = rows(include_str!("fixtures/search/firms.tsv"))
        .map(|c| Firm {
            uscc: c[0].into(),
            name: c[1].into(),
            former_names: c[2].split(';').filter(|s| !s.is_empty()).map(String::from).collect(),
            legal_rep: c[3].into(),
            reg_no: c[4].into(),
            ..Default::default()
        })
        .collect();
    SearchIndex::new(firms)
}

#[test]
fn the_search_test_set() {
    let ix = index();
    let mut failures = Vec::new();
    let mut n = 0;
    for c in rows(include_str!("fixtures/search/queries.tsv")) {
        let (query, want, how) = (c[0], c[1], c[2]);
        n += 1;
        let hits = ix.search(query, 10);
        let got = hits.first().map(|h| {
            let how = serde_json::to_value(h.matched).unwrap();
            (h.firm.uscc.clone(), how.as_str().unwrap().to_string())
        });
        let ok = match (want, &got) {
            ("-", None) => true,
            (w, Some((u, m))) => w == u && how == m,
            _ => false,
        };
        if !ok {
            failures.push(format!("{query:?}: want {want} by {how}, got {got:?}"));
        }
    }
    assert!(n >= 50, "the test set has {n} queries");
    assert!(
        failures.is_empty(),
        "{} of {n} queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_legal_representative_of_two_firms_finds_both() {
    let ix = index();
    let hits = ix.search("周国", 10);
    let mut found: Vec<&str> = hits.iter().map(|h| h.firm.uscc.as_str()).collect();
    found.sort();
    assert_eq!(found, ["913306047300733163", "91330604MA2D99999X"]);
}
