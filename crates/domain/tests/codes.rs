//! Tests as data for the domain's codes: the shared USCC vectors, the embedded code lists, GB/T 4754
//! industries, legacy identifiers and the resolver, and a property loop over generated USCCs.
//!
//! Each feature has one `check_*` helper; the tests are tables of calls to it.

use std::collections::HashMap;
use xinyong_domain::industry::{self, Level};
use xinyong_domain::legacy::{reg_no_check_digit, AliasError, IdKind, ResidentId, ResolveError, Resolver, TaxSeq};
use xinyong_domain::normalize::compact_code;
use xinyong_domain::uscc::ALPHABET;
use xinyong_domain::{candidates, classify, orgcode, region, LegacyId, OrgCode, RegNo, TaxId, Uscc};

/// `/work/shared/data/` seen from this crate.
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/");
/// The embedded copies.
const EMBEDDED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/");

fn shared_rows(file: &str) -> Vec<HashMap<String, String>> {
    let path = format!("{SHARED}{file}");
    let mut r = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let headers = r.headers().expect("header").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// USCC vectors
// ---------------------------------------------------------------------------------------------

/// One shared vector: `Uscc::parse` agrees with `valid`, and where `inner` (the
/// `gb11714_inner_check_ok` column) is given and the code compacts to 18 characters,
/// `OrgCode::parse` of positions 9–17 agrees with it.
fn check_uscc_vector(file: &str, code: &str, valid: &str, inner: &str) {
    let got = Uscc::parse(code);
    assert_eq!(got.is_ok(), valid == "true", "{file}: {code:?}: {got:?}");
    if let Ok(u) = got {
        assert_eq!(u.as_str(), compact_code(code), "{file}: {code:?} normalises");
    }
    let compact: Vec<char> = compact_code(code).chars().collect();
    if !inner.is_empty() && compact.len() == 18 {
        let org: String = compact[8..17].iter().collect();
        let ok = OrgCode::parse(&org);
        assert_eq!(ok.is_ok(), inner == "true", "{file}: {code:?}: inner {org}: {ok:?}");
    }
}

#[test]
fn uscc_vectors_agree() {
    let mut n = 0;
    for file in ["uscc_vectors.csv", "uscc_public_companies.csv"] {
        for row in shared_rows(file) {
            check_uscc_vector(file, &row["code"], &row["valid"], &row["gb11714_inner_check_ok"]);
            n += 1;
        }
    }
    assert_eq!(n, 231 + 27, "the shared README's counts");
}

// ---------------------------------------------------------------------------------------------
// Embedded copies
// ---------------------------------------------------------------------------------------------

/// The embedded copy (the constant compiled in, and the file under `crates/domain/data/`) is
/// byte-identical to the shared file.
fn check_embedded(file: &str, compiled_in: &str) {
    let shared = std::fs::read(format!("{SHARED}{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
    let on_disk = std::fs::read(format!("{EMBEDDED}{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(
        on_disk == shared,
        "crates/domain/data/{file} differs from shared/data/{file}"
    );
    assert!(
        compiled_in.as_bytes() == shared,
        "the compiled-in {file} differs from shared/data/{file}"
    );
}

#[test]
fn embedded_copies_match_shared_data() {
    check_embedded("gbt2260_china_county_level.csv", region::COUNTY_LEVEL_CSV);
    check_embedded("gbt2260_historical_stdnum.csv", region::HISTORICAL_CSV);
    check_embedded("gbt2260_zhejiang.csv", region::ZHEJIANG_CSV);
    check_embedded("gbt2260_zhejiang_townships.csv", region::ZHEJIANG_TOWNSHIPS_CSV);
    check_embedded("gbt4754_2017.csv", industry::GBT4754_CSV);
}

// ---------------------------------------------------------------------------------------------
// Industries
// ---------------------------------------------------------------------------------------------

/// `code` (with or without its section letter) is the industry with this level, name, section and
/// parent, or (`None`) no industry.
fn check_industry(code: &str, expected: Option<(Level, &str, char, Option<&str>)>) {
    let got = industry::lookup(code).map(|i| (i.level, i.name.as_str(), i.section, i.parent.as_deref()));
    assert_eq!(got, expected, "{code:?}");
}

#[test]
fn industry_counts() {
    let count = |l: Level| industry::all().iter().filter(|i| i.level == l).count();
    assert_eq!(count(Level::Section), 20);
    assert_eq!(count(Level::Division), 97);
    assert_eq!(count(Level::Group), 473);
    // The shared README: 1,380-1,382 depending on the 2019 amendment; this file has 1,381.
    assert_eq!(count(Level::Class), 1381);
    assert_eq!(industry::classes().count(), 1381);
    assert_eq!(industry::all().len(), 20 + 97 + 473 + 1381);
}

#[test]
fn industry_lookups() {
    use Level::*;
    check_industry("2614", Some((Class, "有机化学原料制造", 'C', Some("261"))));
    check_industry("C2614", Some((Class, "有机化学原料制造", 'C', Some("261"))));
    check_industry("4011", Some((Class, "工业自动控制系统装置制造", 'C', Some("401"))));
    check_industry("C3473", Some((Class, "照相机及器材制造", 'C', Some("347"))));
    check_industry("0111", Some((Class, "稻谷种植", 'A', Some("011"))));
    check_industry("A0111", Some((Class, "稻谷种植", 'A', Some("011"))));
    check_industry("011", Some((Group, "谷物种植", 'A', Some("01"))));
    check_industry("01", Some((Division, "农业", 'A', Some("A"))));
    check_industry("26", Some((Division, "化学原料和化学制品制造业", 'C', Some("C"))));
    check_industry("C", Some((Section, "制造业", 'C', None)));
    check_industry("A", Some((Section, "农、林、牧、渔业", 'A', None)));
    check_industry("A2614", None);
    check_industry("9999", None);
    check_industry("U", None);
    check_industry("", None);
    assert_eq!(industry::division_of("C2614").map(|d| d.code.as_str()), Some("26"));
    assert_eq!(industry::division_of("261").map(|d| d.code.as_str()), Some("26"));
    assert_eq!(industry::division_of("26").map(|d| d.code.as_str()), Some("26"));
    assert_eq!(industry::division_of("C"), None);
    assert_eq!(industry::section_of("4011").map(|d| d.code.as_str()), Some("C"));
    assert_eq!(industry::section_of("C").map(|d| d.code.as_str()), Some("C"));
    assert_eq!(
        industry::section_of("0111").map(|d| d.name.as_str()),
        Some("农、林、牧、渔业")
    );
    assert_eq!(industry::children_of("261").len(), 5, "2611-2614 and 2619");
}

#[test]
fn industry_agrees_with_the_file_row_by_row() {
    let rows = shared_rows("gbt4754_2017.csv");
    assert_eq!(rows.len(), industry::all().len());
    for row in &rows {
        let level = match row["level"].as_str() {
            "section" => Level::Section,
            "division" => Level::Division,
            "group" => Level::Group,
            "class" => Level::Class,
            l => panic!("unknown level {l}"),
        };
        let section = row["code_with_section"].chars().next().unwrap();
        let parent = Some(row["parent"].as_str()).filter(|p| !p.is_empty());
        let expected = Some((level, row["name"].as_str(), section, parent));
        check_industry(&row["code"], expected);
        check_industry(&row["code_with_section"], expected);
        let ind = industry::lookup(&row["code"]).unwrap();
        assert_eq!(ind.description, row["description"]);
        assert_eq!(ind.code_with_section(), row["code_with_section"]);
        assert_eq!(ind.code.len(), level.code_len());
        // The tree: a parent is one level up, in the same section, and a prefix of the code.
        if let Some(p) = industry::parent_of(&row["code"]) {
            assert_eq!(p.section, section, "{}", row["code"]);
            if level != Level::Division {
                assert!(ind.code.starts_with(&p.code), "{}", row["code"]);
            }
        } else {
            assert_eq!(level, Level::Section);
        }
        if level != Level::Section {
            let d = industry::division_of(&row["code"]).unwrap();
            assert_eq!((d.level, d.code.as_str()), (Level::Division, &row["code"][..2]));
        }
    }
    let classes: Vec<&str> = industry::classes().map(|c| c.code.as_str()).collect();
    assert!(classes.windows(2).all(|w| w[0] < w[1]), "classes are in code order");
}

// ---------------------------------------------------------------------------------------------
// Legacy identifiers
// ---------------------------------------------------------------------------------------------

/// ISO 7064 MOD 11,10 verification of all 15 digits, written independently of the library's
/// closed form: run the hybrid recursion over every digit; the number is valid iff the last
/// intermediate sum (before 0 becomes 10) is 1.
fn mod11_10_valid(digits: &str) -> bool {
    let mut p = 10;
    for (i, c) in digits.chars().enumerate() {
        let s = (p + c.to_digit(10).unwrap()) % 10;
        if i == digits.len() - 1 {
            return s == 1;
        }
        p = (if s == 0 { 10 } else { s } * 2) % 11;
    }
    false
}

/// `RegNo::from_first14(first14)` appends `check`, which is the only digit the independent
/// verification accepts, and the result parses back.
fn check_reg_no(first14: &str, check: char) {
    let r = RegNo::from_first14(first14).unwrap_or_else(|e| panic!("{first14}: {e}"));
    assert_eq!(r.as_str(), format!("{first14}{check}"));
    let accepted: Vec<char> = ('0'..='9')
        .filter(|c| mod11_10_valid(&format!("{first14}{c}")))
        .collect();
    assert_eq!(accepted, vec![check], "{first14}");
    assert_eq!(reg_no_check_digit(first14.as_bytes()), Some(check));
    assert_eq!(RegNo::parse(r.as_str()), Ok(r));
    assert_eq!(
        (r.region(), r.sequence(), r.check_digit()),
        (&first14[..6], &first14[6..], check)
    );
}

#[test]
fn reg_no_check_digits() {
    // Worked by hand (p, s per digit): 3 3 0 6 0 4 0 0 0 0 1 2 3 4 gives
    // p = 6 7 3 7 3 3 6 1 2 4 10 4 3 3; (3 + c) mod 10 == 1 gives c = 8.
    check_reg_no("33060400001234", '8');
    // 3 3 0 6 0 4 6 0 0 0 0 0 0 1: final p = 7, c = 4.
    check_reg_no("33060460000001", '4');
    // 1 1 0 0 ... 0: final p = 2 (s = 1), c = 9.
    check_reg_no("11000000000000", '9');
    // The value in a public Java validator's test: 110108000000016.
    check_reg_no("11010800000001", '6');
    check_reg_no("33060400000000", '2');
}

/// The outcome of a parse: `Ok(canonical text)` or `Err(rule)`; the error's `Display` must start
/// with its rule.
fn outcome<T: std::fmt::Display, E: std::fmt::Display>(
    r: Result<T, E>,
    rule: impl Fn(&E) -> &'static str,
) -> Result<String, &'static str> {
    match r {
        Ok(v) => Ok(v.to_string()),
        Err(e) => {
            let text = e.to_string();
            let name = rule(&e);
            assert!(
                text == name || text.starts_with(&format!("{name}: ")),
                "{text:?} starts with {name:?}"
            );
            Err(name)
        }
    }
}

/// One parse of each legacy type: the canonical text, or the rule broken.
fn check_reg_no_parse(raw: &str, expected: Result<&str, &str>) {
    let got = outcome(RegNo::parse(raw), |e| e.rule());
    assert_eq!(got, expected.map(str::to_string), "RegNo {raw:?}");
}
fn check_tax_id_parse(raw: &str, expected: Result<&str, &str>) {
    let got = outcome(TaxId::parse(raw), |e| e.rule());
    assert_eq!(got, expected.map(str::to_string), "TaxId {raw:?}");
}
fn check_resident_id_parse(raw: &str, expected: Result<&str, &str>) {
    let got = outcome(ResidentId::parse(raw), |e| e.rule());
    assert_eq!(got, expected.map(str::to_string), "ResidentId {raw:?}");
}

#[test]
fn reg_no_rules() {
    check_reg_no_parse("330604000012348", Ok("330604000012348"));
    check_reg_no_parse("３３０６０４ 0000-12348", Ok("330604000012348"));
    check_reg_no_parse("110108000000016", Ok("110108000000016"));
    check_reg_no_parse("", Err("empty"));
    check_reg_no_parse(" - ", Err("empty"));
    check_reg_no_parse("33060400001234", Err("length"));
    check_reg_no_parse("3306040000123489", Err("length"));
    check_reg_no_parse("33060400001234A", Err("character"));
    check_reg_no_parse("33060400001234中", Err("character"));
    check_reg_no_parse("339999000012348", Err("region"));
    check_reg_no_parse("330604000012349", Err("check"));
    assert_eq!(
        RegNo::from_first14("3399990000123").map_err(|e| e.rule()),
        Err("length")
    );
    assert_eq!(
        RegNo::from_first14("33999900001234").map_err(|e| e.rule()),
        Err("region")
    );
    assert_eq!(
        RegNo::from_first14("3306040000123A").map_err(|e| e.rule()),
        Err("character")
    );
    assert_eq!(
        RegNo::parse("330604000012349").unwrap_err().to_string(),
        "check: the ISO 7064 MOD 11,10 check digit should be 8, got 9"
    );
}

#[test]
fn resident_id_rules() {
    // The examples in GB 11643-1999.
    check_resident_id_parse("11010519491231002X", Ok("11010519491231002X"));
    check_resident_id_parse("11010519491231002x", Ok("11010519491231002X"));
    check_resident_id_parse("440524188001010014", Ok("440524188001010014"));
    check_resident_id_parse("", Err("empty"));
    check_resident_id_parse("11010519491231002", Err("length"));
    check_resident_id_parse("1101051949123100X2", Err("character"));
    check_resident_id_parse("11010519491331002X", Err("birth-date"));
    check_resident_id_parse("110105194902300021", Err("birth-date"));
    check_resident_id_parse("110105179912310021", Err("birth-date"));
    check_resident_id_parse("110105194912310021", Err("check"));
    let id = ResidentId::parse("11010519491231002X").unwrap();
    assert_eq!(id.birth_date().to_string(), "1949-12-31");
    assert_eq!(id.address_code(), "110105");
    assert_eq!(
        format!("{id:?}"),
        "ResidentId(110105********002X)",
        "Debug masks the birth date"
    );
}

#[test]
fn tax_id_rules() {
    // A real firm of the district (shared uscc_public_companies.csv): its tax id was the region
    // code and its organisation code.
    let uscc = Uscc::parse("91330604609674830U").unwrap();
    let org15 = format!("{}{}", uscc.region(), uscc.org_code());
    assert_eq!(org15, "330604609674830");
    let t = TaxId::parse(&org15).unwrap();
    assert_eq!(t.org_code(), Some(uscc.org_code()));
    assert_eq!(t.resident_id(), None);
    match t {
        TaxId::Org15 { region, org } => {
            assert_eq!((region.as_str(), org.as_str()), ("330604", "609674830"))
        }
        TaxId::Person20 { .. } => panic!("15 characters is Org15"),
    }
    check_tax_id_parse("330604 60967483-0", Ok("330604609674830"));
    // Organisation codes may carry capitals; the check character may be X.
    let embedded = Uscc::parse("91330100799655058B").unwrap().org_code();
    check_tax_id_parse(&format!("330100{embedded}"), Ok(&format!("330100{embedded}")));
    let x = Uscc::parse("9144030071526726XG").unwrap().org_code();
    check_tax_id_parse(&format!("440300{x}"), Ok("44030071526726X"));

    let p = TaxId::parse("11010519491231002x01").unwrap();
    assert_eq!(p.to_string(), "11010519491231002X01");
    assert_eq!(p.org_code(), None);
    match p {
        TaxId::Person20 { id18, seq } => {
            assert_eq!(
                (id18.as_str(), seq.value(), seq.to_string()),
                ("11010519491231002X", 1, "01".into())
            )
        }
        TaxId::Org15 { .. } => panic!("20 characters is Person20"),
    }
    assert_eq!(p.masked(), "110105********002X01");
    assert_eq!(TaxSeq::new(99).map(|s| s.value()), Some(99));
    assert_eq!(TaxSeq::new(100), None);

    check_tax_id_parse("", Err("empty"));
    check_tax_id_parse("91330604609674830U", Err("length"));
    check_tax_id_parse("33060460967483", Err("length"));
    check_tax_id_parse("33060A609674830", Err("character"));
    check_tax_id_parse("330604609674831Y", Err("length"));
    check_tax_id_parse("33060460967483Y", Err("character"));
    check_tax_id_parse("339999609674830", Err("region"));
    check_tax_id_parse("330604609674831", Err("org-check"));
    check_tax_id_parse("11010519491231002X0A", Err("character"));
    check_tax_id_parse("1101051949123100X201", Err("character"));
    // A bad character in the sequence is reported before a bad birth date (position order by rule).
    check_tax_id_parse("11010519491331002X0A", Err("character"));
    check_tax_id_parse("11010519491331002X01", Err("birth-date"));
    check_tax_id_parse("11010519491231002101", Err("id-check"));
    assert_eq!(
        TaxId::parse("330604609674831").unwrap_err().to_string(),
        "org-check: the embedded organisation code 609674831 should end in 0"
    );
}

/// `classify(raw)`: the single reading's kind and canonical text, or the rule of the error;
/// `candidates(raw)` lists the valid readings' kinds.
fn check_classify(raw: &str, expected: Result<(IdKind, &str), &str>, kinds: &[IdKind]) {
    let got = classify(raw);
    match (&got, expected) {
        (Ok(id), Ok((kind, text))) => assert_eq!((id.kind(), id.to_string()), (kind, text.to_string()), "{raw:?}"),
        (Err(e), Err(rule)) => {
            assert_eq!(e.rule(), rule, "{raw:?}: {e}");
            assert!(e.to_string().starts_with(rule), "{raw:?}: {e}");
        }
        _ => panic!("{raw:?}: got {got:?}, expected {expected:?}"),
    }
    let got_kinds: Vec<IdKind> = candidates(raw).iter().map(LegacyId::kind).collect();
    assert_eq!(got_kinds, kinds, "{raw:?}");
}

/// A 15-digit string valid both as a registration number and as an Org15 tax id (organisation
/// code 60967504-0 happens to satisfy both checks).
const BOTH: &str = "330604609675040";

#[test]
fn classify_and_candidates() {
    use IdKind::*;
    check_classify("91330604609674830U", Ok((Uscc, "91330604609674830U")), &[Uscc]);
    check_classify(
        "９１３３０６０４６０９６７４８３０ｕ",
        Ok((Uscc, "91330604609674830U")),
        &[Uscc],
    );
    check_classify("330604000012348", Ok((RegNo, "330604000012348")), &[RegNo]);
    check_classify("330604609674830", Ok((TaxId, "330604609674830")), &[TaxId]);
    check_classify("60967483-0", Ok((OrgCode, "609674830")), &[OrgCode]);
    check_classify("11010519491231002X01", Ok((TaxId, "11010519491231002X01")), &[TaxId]);
    check_classify(BOTH, Err("ambiguous"), &[RegNo, TaxId]);
    check_classify("", Err("empty"), &[]);
    check_classify(" \u{3000}- ", Err("empty"), &[]);
    check_classify("1234567", Err("length"), &[]);
    check_classify("91330604609674830UX", Err("length"), &[]);
    check_classify("91330604609674830A", Err("invalid"), &[]);
    check_classify("609674831", Err("invalid"), &[]);
    check_classify("330604609674831", Err("invalid"), &[]);
    check_classify("11010519491231002101", Err("invalid"), &[]);

    // The reason names every reading of the length with its own rule.
    let e = classify("330604609674831").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid: as a registration number: check: the ISO 7064 MOD 11,10 check digit should be 6, got 1; \
         as a tax id: org-check: the embedded organisation code 609674831 should end in 0"
    );
    match e {
        xinyong_domain::IdError::Invalid(v) => {
            let kinds: Vec<(IdKind, &str)> = v.iter().map(|c| (c.kind(), c.rule())).collect();
            assert_eq!(kinds, [(RegNo, "check"), (TaxId, "org-check")]);
        }
        e => panic!("{e}"),
    }
    assert_eq!(
        classify(BOTH).unwrap_err().to_string(),
        format!("ambiguous: valid as registration number {BOTH} and as tax id {BOTH}")
    );
    assert_eq!(
        classify("91330604609674830A").unwrap_err().to_string(),
        "invalid: as a USCC: check: the check character should be U, got A"
    );
}

// ---------------------------------------------------------------------------------------------
// Resolver
// ---------------------------------------------------------------------------------------------

/// `resolver.resolve(raw)`: the firm, or the rule of the error (whose text starts with it).
fn check_resolve(resolver: &Resolver, raw: &str, expected: Result<&str, &str>) {
    let got = outcome(resolver.resolve(raw), ResolveError::rule);
    assert_eq!(got, expected.map(str::to_string), "resolve {raw:?}");
}

/// A firm with this authority, entity type and region and this organisation-code body.
fn firm(prefix8: &str, body8: &str) -> Uscc {
    let org_check = orgcode::check_char(body8.as_bytes()).unwrap();
    Uscc::from_first17(&format!("{prefix8}{body8}{org_check}")).unwrap_or_else(|e| panic!("{prefix8}{body8}: {e}"))
}

#[test]
fn resolver_cases() {
    // Firm A: a real USCC with a registration number. Firm B: the org code of BOTH.
    // Firm C: BOTH as a registration number. Firm D: an individual business with a 20-character
    // tax id. Firms E and F: a crosswalk that (wrongly) gives both the same registration number.
    let a = Uscc::parse("91330604609674830U").unwrap();
    let a_reg = RegNo::parse("330604000012348").unwrap();
    let b = firm("91330604", "60967504");
    assert_eq!(b.org_code().as_str(), &BOTH[6..]);
    let c = Uscc::parse("91330604146165334B").unwrap();
    let d = firm("92330604", "MA2D3C4F");
    let e = firm("91330604", "MA2D3C5G");
    let f = firm("91330604", "MA2D3C6H");
    let unknown = Uscc::parse("91110000600037341L").unwrap();

    let mut r = Resolver::new();
    r.add_firm(a, Some(a_reg));
    r.add_firm(b, None);
    r.add_firm(c, Some(RegNo::parse(BOTH).unwrap()));
    r.add_firm(d, None);
    r.add_alias("11010519491231002X01", d).unwrap();
    let shared_reg = RegNo::from_first14("33060400009999").unwrap();
    r.add_firm(e, Some(shared_reg));
    r.add_firm(f, Some(shared_reg));
    r.add_firm(a, Some(a_reg)); // adding the same firm again changes nothing

    let (a, b, d) = (a.to_string(), b.to_string(), d.to_string());
    check_resolve(&r, "91330604609674830U", Ok(&a));
    check_resolve(&r, " ９１３３０６０４６０９６７４８３０ｕ ", Ok(&a));
    check_resolve(&r, &unknown.to_string(), Ok(unknown.as_str()));
    check_resolve(&r, "330604000012348", Ok(&a));
    check_resolve(&r, "60967483-0", Ok(&a));
    check_resolve(&r, "330604609674830", Ok(&a)); // Org15 tax id through its organisation code
    check_resolve(&r, "110105 19491231 002x 01", Ok(&d)); // alias
    check_resolve(&r, "609675040", Ok(&b));
    check_resolve(&r, BOTH, Err("ambiguous")); // reg no of C, org code of B
    check_resolve(&r, shared_reg.as_str(), Err("ambiguous")); // the crosswalk contradicts itself
    check_resolve(&r, "", Err("invalid"));
    check_resolve(&r, "12345", Err("invalid"));
    check_resolve(&r, "91330604609674830A", Err("invalid"));
    check_resolve(&r, "中文名称有限公司", Err("invalid"));
    check_resolve(&r, "9133060460967483０中", Err("invalid"));
    check_resolve(&r, "a much longer line that is no identifier at all", Err("invalid"));
    check_resolve(&r, "330604000012356", Err("unknown-reg-no"));
    check_resolve(&r, "600037341", Err("unknown-org-code"));
    check_resolve(&r, "110000600037341", Err("unknown-tax-id"));
    check_resolve(&r, "44052418800101001401", Err("unknown-tax-id"));

    // When a 15-digit string has two valid readings and one resolves, that one wins.
    let mut only_org = Resolver::new();
    only_org.add_firm(Uscc::parse(&b).unwrap(), None);
    check_resolve(&only_org, BOTH, Ok(&b));
    let mut only_reg = Resolver::new();
    only_reg.add_firm(c, Some(RegNo::parse(BOTH).unwrap()));
    check_resolve(&only_reg, BOTH, Ok(c.as_str()));
    // Neither known: the registration number's error.
    check_resolve(&Resolver::new(), BOTH, Err("unknown-reg-no"));

    // Exact messages.
    assert_eq!(r.resolve("").unwrap_err().to_string(), "invalid: empty");
    assert_eq!(
        r.resolve("91330604609674830A").unwrap_err().to_string(),
        "invalid: as a USCC: check: the check character should be U, got A"
    );
    assert_eq!(
        r.resolve("44052418800101001401").unwrap_err().to_string(),
        "unknown-tax-id: tax id 440524********001401 is not in the crosswalk",
        "resident ID numbers are masked in messages"
    );
    assert_eq!(
        r.resolve(BOTH).unwrap_err(),
        ResolveError::Ambiguous {
            first: c,
            second: Uscc::parse(&b).unwrap()
        }
    );
    assert_eq!(r.conflicts(), vec![(LegacyId::RegNo(shared_reg), e, f)]);

    // Aliases must be valid ids, and a USCC always resolves to itself.
    let err = r.add_alias("12345", c).unwrap_err();
    assert_eq!((err.rule(), err.to_string().starts_with("length: ")), ("length", true));
    let err = r.add_alias("330604000012349", c).unwrap_err();
    assert_eq!(err.rule(), "invalid");
    let err = r.add_alias(&a, c).unwrap_err();
    assert_eq!(
        err,
        AliasError::Uscc {
            alias: Uscc::parse(&a).unwrap(),
            uscc: c
        }
    );
    assert!(err.to_string().starts_with("uscc-alias: "));
    assert_eq!(r.add_alias(c.as_str(), c), Ok(()));
    // An alias for an organisation code or registration number joins the same index.
    r.add_alias("600037341", c).unwrap();
    check_resolve(&r, "600037341", Ok(c.as_str()));
    check_resolve(&r, "110000600037341", Ok(c.as_str()));
}

// ---------------------------------------------------------------------------------------------
// Property loop
// ---------------------------------------------------------------------------------------------

/// A 64-bit linear congruential generator (Knuth's MMIX constants); the high bits are used.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
    fn pick(&mut self, from: &[u8]) -> u8 {
        from[self.below(from.len())]
    }
}

/// `Uscc::from_first17(first17)` either breaks a rule that only the first 17 characters can break,
/// or gives a code that parses, and then single substitutions of it are invalid: at every position
/// every other alphabet character (`exhaustive`), or one pseudo-random other character.
fn check_first17(first17: &str, exhaustive: bool, rng: &mut Lcg) -> Result<Uscc, &'static str> {
    let u = match Uscc::from_first17(first17) {
        Err(e) => {
            let allowed = ["authority", "entity-type", "region", "org-check"];
            assert!(allowed.contains(&e.rule()), "{first17}: {e}");
            return Err(e.rule());
        }
        Ok(u) => u,
    };
    assert_eq!(&u.as_str()[..17], first17);
    assert_eq!(Uscc::parse(u.as_str()), Ok(u), "{first17}");
    let code = u.as_str().as_bytes();
    for pos in 0..18 {
        let others: Vec<u8> = ALPHABET.iter().copied().filter(|&c| c != code[pos]).collect();
        let subs = if exhaustive { others } else { vec![rng.pick(&others)] };
        for sub in subs {
            let mut m = code.to_vec();
            m[pos] = sub;
            let m = String::from_utf8(m).unwrap();
            // Already compact, so `parse_compact` is `parse` without the normalising copy.
            assert!(
                Uscc::parse_compact(&m).is_err(),
                "{u} with position {} as {} is still valid",
                pos + 1,
                sub as char
            );
        }
    }
    Ok(u)
}

#[test]
fn from_first17_reports_the_rule_broken() {
    let rule = |s: &str| Uscc::from_first17(s).map(|u| u.to_string()).map_err(|e| e.rule());
    assert_eq!(rule("91110000600037341"), Ok("91110000600037341L".to_string()));
    assert_eq!(rule("9111000060003734"), Err("length"));
    assert_eq!(rule("911100006000373411"), Err("length"));
    assert_eq!(rule("9111000060003734I"), Err("character"));
    assert_eq!(rule("911100006000373中"), Err("length"), "16 characters");
    assert_eq!(rule("9111000060003734中"), Err("character"));
    assert_eq!(rule("B1110000600037341"), Err("authority"));
    assert_eq!(rule("97110000600037341"), Err("entity-type"));
    assert_eq!(rule("91999900600037341"), Err("region"));
    assert_eq!(rule("91110000600037342"), Err("org-check"));
}

#[test]
fn generated_codes_hold_and_every_substitution_is_caught() {
    let regions: Vec<String> = shared_rows("gbt2260_zhejiang.csv")
        .into_iter()
        .map(|r| r["code"].clone())
        .collect();
    let mut rng = Lcg(20_151_001);
    let (mut ok, mut rules) = (0, HashMap::new());
    for _ in 0..10_000 {
        let mut s = Vec::with_capacity(17);
        // Mostly plausible prefixes, so that every rule and many valid codes are exercised.
        s.push(if rng.below(8) == 0 {
            rng.pick(ALPHABET)
        } else {
            rng.pick(b"123456789ANY")
        });
        s.push(if rng.below(8) == 0 {
            rng.pick(ALPHABET)
        } else {
            rng.pick(b"1239")
        });
        if rng.below(8) == 0 {
            (0..6).for_each(|_| s.push(rng.pick(b"0123456789")));
        } else {
            s.extend_from_slice(regions[rng.below(regions.len())].as_bytes());
        }
        (0..8).for_each(|_| s.push(rng.pick(ALPHABET)));
        let org_check = orgcode::check_char(&s[8..16]).unwrap() as u8;
        s.push(if rng.below(8) == 0 {
            rng.pick(ALPHABET)
        } else {
            org_check
        });
        let first17 = String::from_utf8(s).unwrap();
        // Every substitution for the first 1,000 valid codes (30 x 18 each), one per position
        // for the rest, to keep a debug test run to a few seconds.
        match check_first17(&first17, ok < 1_000, &mut rng) {
            Ok(_) => ok += 1,
            Err(rule) => *rules.entry(rule).or_insert(0) += 1,
        }
    }
    assert!(ok > 3_000, "only {ok} of 10,000 generated prefixes were valid");
    for rule in ["authority", "entity-type", "region", "org-check"] {
        assert!(
            rules.get(rule).copied().unwrap_or(0) > 50,
            "rule {rule} hardly exercised: {rules:?}"
        );
    }
}
