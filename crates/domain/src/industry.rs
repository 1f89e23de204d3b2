//! GB/T 4754-2017 industrial classification for national economic activities (国民经济行业分类).
//!
//! Four levels: 20 sections (门类, a letter A–T), 97 divisions (大类, 2 digits), 473 groups (中类,
//! 3 digits) and the classes (小类, 4 digits). Codes below the section are unique without the
//! section letter; firms' records carry them with or without it (`2614` or `C2614`).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// Embedded copy of `../shared/data/gbt4754_2017.csv` (a test keeps them equal). Fields can be
/// quoted and contain commas.
pub const GBT4754_CSV: &str = include_str!("../data/gbt4754_2017.csv");

/// The level of an industry in the classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// 门类: a letter A–T.
    Section,
    /// 大类: 2 digits.
    Division,
    /// 中类: 3 digits.
    Group,
    /// 小类: 4 digits.
    Class,
}

impl Level {
    /// The name used in the data file: `section`, `division`, `group` or `class`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Section => "section",
            Level::Division => "division",
            Level::Group => "group",
            Level::Class => "class",
        }
    }

    /// The length of a code of this level, without the section letter (a section's code is its
    /// letter, length 1).
    pub fn code_len(self) -> usize {
        match self {
            Level::Section => 1,
            Level::Division => 2,
            Level::Group => 3,
            Level::Class => 4,
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [Level::Section, Level::Division, Level::Group, Level::Class]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One industry: a section, division, group or class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Industry {
    /// The code without the section letter (`2614`), or the letter for a section (`C`).
    pub code: String,
    /// The Chinese name.
    pub name: String,
    /// Section, division, group or class.
    pub level: Level,
    /// The code of the level above (`261` for `2614`, `C` for `26`); `None` for a section.
    pub parent: Option<String>,
    /// The section letter (`C` for `2614`).
    pub section: char,
    /// The NBS note on what the industry covers (often empty).
    pub description: String,
}

impl Industry {
    /// The code with its section letter (`C2614`); a section's is its letter.
    pub fn code_with_section(&self) -> String {
        match self.level {
            Level::Section => self.code.clone(),
            _ => format!("{}{}", self.section, self.code),
        }
    }
}

struct Table {
    /// In file order (each section followed by its divisions, groups and classes).
    rows: Vec<Industry>,
    by_code: HashMap<String, usize>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut rows = Vec::new();
        let mut reader = csv::Reader::from_reader(GBT4754_CSV.as_bytes());
        for rec in reader.records() {
            let rec = rec.expect("embedded GB/T 4754 CSV is well-formed");
            let field = |i: usize| rec.get(i).unwrap_or("").trim();
            let level = Level::from_name(field(2)).expect("embedded GB/T 4754 CSV has known levels");
            let code = field(0).to_string();
            let section = match level {
                Level::Section => code.chars().next(),
                _ => field(4).chars().next(),
            }
            .expect("embedded GB/T 4754 CSV has section letters");
            rows.push(Industry {
                name: field(1).to_string(),
                level,
                parent: Some(field(3)).filter(|p| !p.is_empty()).map(str::to_string),
                section,
                description: field(5).to_string(),
                code,
            });
        }
        let by_code = rows.iter().enumerate().map(|(i, r)| (r.code.clone(), i)).collect();
        Table { rows, by_code }
    })
}

/// The industry with this code: a section letter (`C`), or a division, group or class code with or
/// without its section letter (`2614`, `C2614`; surrounding spaces and a lower-case letter are
/// accepted). A section letter that does not match the code's section gives `None`.
pub fn lookup(code: &str) -> Option<&'static Industry> {
    let code = code.trim();
    let t = table();
    let first = code.chars().next()?;
    if first.is_ascii_alphabetic() {
        let letter = first.to_ascii_uppercase();
        let rest = &code[1..];
        if rest.is_empty() {
            let mut b = [0u8; 4];
            return t.by_code.get(&*letter.encode_utf8(&mut b)).map(|&i| &t.rows[i]);
        }
        let ind = t.by_code.get(rest).map(|&i| &t.rows[i])?;
        return (ind.level != Level::Section && ind.section == letter).then_some(ind);
    }
    t.by_code.get(code).map(|&i| &t.rows[i])
}

/// The industry one level up (`None` for a section or an unknown code).
pub fn parent_of(code: &str) -> Option<&'static Industry> {
    lookup(lookup(code)?.parent.as_deref()?)
}

/// The division (大类) a division, group or class belongs to (a division is its own); `None` for a
/// section or an unknown code.
pub fn division_of(code: &str) -> Option<&'static Industry> {
    let ind = lookup(code)?;
    match ind.level {
        Level::Section => None,
        _ => lookup(&ind.code[..2]),
    }
}

/// The section (门类) an industry belongs to (a section is its own); `None` for an unknown code.
pub fn section_of(code: &str) -> Option<&'static Industry> {
    let mut b = [0u8; 4];
    lookup(lookup(code)?.section.encode_utf8(&mut b))
}

/// Every industry, in file order (each section followed by its divisions, groups and classes).
pub fn all() -> &'static [Industry] {
    &table().rows
}

/// The classes (小类, the finest level), in code order (the file is in code order; a test checks).
pub fn classes() -> impl Iterator<Item = &'static Industry> {
    all().iter().filter(|i| i.level == Level::Class)
}

/// The industries one level below `code`, in code order (empty for a class or an unknown code).
pub fn children_of(code: &str) -> Vec<&'static Industry> {
    let Some(ind) = lookup(code) else {
        return Vec::new();
    };
    all()
        .iter()
        .filter(|c| c.parent.as_deref() == Some(ind.code.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let c = lookup("C2614").unwrap();
        assert_eq!(
            (c.name.as_str(), c.level, c.section),
            ("有机化学原料制造", Level::Class, 'C')
        );
        assert_eq!(lookup("2614"), Some(c));
        assert_eq!(lookup(" c2614 "), Some(c));
        assert_eq!(lookup("A2614"), None, "wrong section letter");
        assert_eq!(lookup("C").map(|s| s.level), Some(Level::Section));
        assert_eq!(division_of("2614").map(|d| d.code.as_str()), Some("26"));
        assert_eq!(section_of("2614").map(|d| d.code.as_str()), Some("C"));
        assert_eq!(parent_of("2614").map(|d| d.code.as_str()), Some("261"));
        assert_eq!(parent_of("26").map(|d| d.code.as_str()), Some("C"));
        assert_eq!(parent_of("C"), None);
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("中"), None);
    }
}
