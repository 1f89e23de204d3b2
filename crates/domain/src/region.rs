//! GB/T 2260 administrative divisions: current county-level codes, historical codes (a USCC keeps the
//! region code of its issue date, which may since have been abolished) and Zhejiang's townships.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Embedded copies of `../shared/data/gbt2260_*.csv`.
pub const COUNTY_LEVEL_CSV: &str = include_str!("../data/gbt2260_china_county_level.csv");
pub const HISTORICAL_CSV: &str = include_str!("../data/gbt2260_historical_stdnum.csv");
pub const ZHEJIANG_CSV: &str = include_str!("../data/gbt2260_zhejiang.csv");
pub const ZHEJIANG_TOWNSHIPS_CSV: &str = include_str!("../data/gbt2260_zhejiang_townships.csv");

/// The model district: Shangyu, Shaoxing, Zhejiang.
pub const DISTRICT_CODE: &str = "330604";

/// One region or township.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub code: String,
    pub name: String,
    /// `province`, `prefecture`, `county`, `township` or `historical`.
    pub level: String,
    pub parent: Option<String>,
    /// For historical codes: the years the code was in use (inclusive), when known.
    pub valid_from_year: Option<u16>,
    pub valid_to_year: Option<u16>,
}

/// Splits a simple CSV line (the embedded lists quote nothing that contains a comma in the fields
/// we read, but descriptions may be quoted; we only read the leading fields).
fn fields(line: &str) -> Vec<&str> {
    line.split(',').collect()
}

struct Tables {
    by_code: HashMap<String, Region>,
    townships: Vec<Region>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut by_code: HashMap<String, Region> = HashMap::new();
        for line in HISTORICAL_CSV.lines().skip(1) {
            let f = fields(line);
            if f.len() < 5 || f[0].len() != 6 {
                continue;
            }
            by_code.insert(
                f[0].to_string(),
                Region {
                    code: f[0].to_string(),
                    name: f[1].to_string(),
                    level: "historical".into(),
                    parent: None,
                    valid_from_year: f[3].trim().parse().ok(),
                    valid_to_year: f[4].trim().parse().ok(),
                },
            );
        }
        for csv in [COUNTY_LEVEL_CSV, ZHEJIANG_CSV] {
            for line in csv.lines().skip(1) {
                let f = fields(line);
                if f.len() < 4 || f[0].len() != 6 {
                    continue;
                }
                let prev = by_code.get(f[0]).cloned();
                by_code.insert(
                    f[0].to_string(),
                    Region {
                        code: f[0].to_string(),
                        name: f[1].to_string(),
                        level: f[2].to_string(),
                        parent: (!f[3].is_empty()).then(|| f[3].to_string()),
                        valid_from_year: prev.as_ref().and_then(|p| p.valid_from_year),
                        valid_to_year: None,
                    },
                );
            }
        }
        let mut townships = Vec::new();
        for line in ZHEJIANG_TOWNSHIPS_CSV.lines().skip(1) {
            let f = fields(line);
            if f.len() < 4 || f[0].len() != 9 {
                continue;
            }
            let r = Region {
                code: f[0].to_string(),
                name: f[1].to_string(),
                level: f[2].to_string(),
                parent: Some(f[3].to_string()),
                valid_from_year: None,
                valid_to_year: None,
            };
            by_code.insert(r.code.clone(), r.clone());
            townships.push(r);
        }
        Tables { by_code, townships }
    })
}

/// Whether a 6-digit code is a GB/T 2260 region, current or historical.
pub fn is_region_code(code: &str) -> bool {
    code.len() == 6 && tables().by_code.contains_key(code)
}

/// The region or township with this code (6 or 9 digits).
pub fn lookup(code: &str) -> Option<&'static Region> {
    tables().by_code.get(code)
}

/// The townships (9-digit codes) of a county, in code order.
pub fn townships_of(county: &str) -> Vec<&'static Region> {
    let mut v: Vec<&Region> = tables()
        .townships
        .iter()
        .filter(|t| t.parent.as_deref() == Some(county))
        .collect();
    v.sort_by(|a, b| a.code.cmp(&b.code));
    v
}

/// The counties of a province (2-digit prefix) that are real GB/T 2260 codes, in code order.
pub fn counties_in_province(prefix2: &str) -> Vec<&'static Region> {
    let mut v: Vec<&Region> = tables()
        .by_code
        .values()
        .filter(|r| r.level == "county" && r.code.starts_with(prefix2))
        .collect();
    v.sort_by(|a, b| a.code.cmp(&b.code));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shangyu_has_twenty_townships() {
        let t = townships_of(DISTRICT_CODE);
        assert_eq!(t.len(), 20);
        assert_eq!(t[0].name, "百官街道");
        assert!(is_region_code("330604"));
        assert!(!is_region_code("339999"));
    }
}
