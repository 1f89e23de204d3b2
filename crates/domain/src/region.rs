//! GB/T 2260 administrative divisions: current county-level codes, historical codes (a USCC keeps the
//! region code of its issue date, which may since have been abolished) and Zhejiang's townships.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// Embedded copy of `../shared/data/gbt2260_china_county_level.csv` (all counties; some rows are
/// NBS development-zone codes, not GB/T 2260).
pub const COUNTY_LEVEL_CSV: &str = include_str!("../data/gbt2260_china_county_level.csv");
/// Embedded copy of `../shared/data/gbt2260_historical_stdnum.csv` (historical codes with years).
pub const HISTORICAL_CSV: &str = include_str!("../data/gbt2260_historical_stdnum.csv");
/// Embedded copy of `../shared/data/gbt2260_zhejiang.csv` (Zhejiang province, prefectures, counties).
pub const ZHEJIANG_CSV: &str = include_str!("../data/gbt2260_zhejiang.csv");
/// Embedded copy of `../shared/data/gbt2260_zhejiang_townships.csv` (9-digit townships and streets).
pub const ZHEJIANG_TOWNSHIPS_CSV: &str = include_str!("../data/gbt2260_zhejiang_townships.csv");

/// The model district: Shangyu, Shaoxing, Zhejiang.
pub const DISTRICT_CODE: &str = "330604";

/// One region or township.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// 6 digits (9 for a township).
    pub code: String,
    /// The Chinese name (for a historical code, as the historical list gives it).
    pub name: String,
    /// `province`, `prefecture`, `county`, `township` or `historical`.
    pub level: String,
    /// The code of the region above, when known (current codes and townships).
    pub parent: Option<String>,
    /// For historical codes: the years the code was in use (inclusive), when known.
    pub valid_from_year: Option<u16>,
    /// The last year, for an abolished code.
    pub valid_to_year: Option<u16>,
}

/// The records of an embedded CSV file after its header. Names in the historical list are quoted
/// and contain commas (`"东郊区,[1992-]东丽区"`), so this is real CSV parsing, not `split(',')`.
fn records(csv_text: &'static str) -> impl Iterator<Item = csv::StringRecord> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_text.as_bytes())
        .into_records()
        .map(|r| r.expect("embedded GB/T 2260 CSV is well-formed"))
}

/// The leading `n` fields of a record, or `None` if it has fewer.
fn fields(r: &csv::StringRecord, n: usize) -> Option<Vec<&str>> {
    (r.len() >= n).then(|| r.iter().take(n).collect())
}

struct Tables {
    by_code: HashMap<String, Region>,
    townships: Vec<Region>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut by_code: HashMap<String, Region> = HashMap::new();
        for r in records(HISTORICAL_CSV) {
            let Some(f) = fields(&r, 5) else { continue };
            if f[0].len() != 6 {
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
            for r in records(csv) {
                let Some(f) = fields(&r, 4) else { continue };
                if f[0].len() != 6 {
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
        for r in records(ZHEJIANG_TOWNSHIPS_CSV) {
            let Some(f) = fields(&r, 4) else { continue };
            if f[0].len() != 9 {
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

/// A 6-digit GB/T 2260 region code, current or historical. It can only be built by
/// [`RegionCode::parse`], so holding one means [`is_region_code`] accepted it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode([u8; 6]);

impl RegionCode {
    /// The code if it is a 6-digit GB/T 2260 region code (current or historical), else `None`.
    pub fn parse(code: &str) -> Option<Self> {
        let b: [u8; 6] = code.as_bytes().try_into().ok()?;
        (b.iter().all(u8::is_ascii_digit) && is_region_code(code)).then_some(RegionCode(b))
    }

    /// The six digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The region's entry in the code list.
    pub fn region(&self) -> Option<&'static Region> {
        lookup(self.as_str())
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({})", self.as_str())
    }
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

    #[test]
    fn quoted_historical_names_keep_their_years() {
        // `132426,"完县,[1993-1994]顺平县",河北省,,1992`: the quoted name contains a comma.
        let r = lookup("132426").expect("historical code");
        assert_eq!(
            (r.name.as_str(), r.level.as_str()),
            ("完县,[1993-1994]顺平县", "historical")
        );
        assert_eq!((r.valid_from_year, r.valid_to_year), (None, Some(1992)));
        // `130204,"东矿区,[1995-]古冶区",河北省,1983,1994`, still current as 古冶区: the current entry
        // keeps the historical first year.
        let r = lookup("130204").expect("current code");
        assert_eq!((r.name.as_str(), r.valid_from_year), ("古冶区", Some(1983)));
    }

    #[test]
    fn region_code_only_holds_listed_codes() {
        assert_eq!(
            RegionCode::parse("330604").map(|r| r.to_string()),
            Some("330604".into())
        );
        assert_eq!(
            RegionCode::parse("120110").map(|r| r.to_string()),
            Some("120110".into())
        );
        for bad in ["339999", "33060", "3306041", "33060A", ""] {
            assert_eq!(RegionCode::parse(bad), None, "{bad}");
        }
        assert_eq!(
            RegionCode::parse("330604")
                .and_then(|r| r.region())
                .map(|r| r.name.as_str()),
            Some("上虞区")
        );
    }
}
