//! Firm search, in memory and pure: by name (whole, prefix or any part), former names, pinyin (whole syllables
//! or initials), the legal representative, the USCC or a legacy registration number; one wrong, missing or
//! extra character in a name is tolerated. Built from the register's current facts; no IO here.
//!
//! Ranking (highest first): exact code; exact name; name prefix; name part; former name; pinyin or initials;
//! legal representative; one typo. Ties: shorter names first, then USCC, so results are deterministic.

use serde::Serialize;

/// One firm as the register describes it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Firm {
    pub uscc: String,
    pub name: String,
    pub former_names: Vec<String>,
    pub legal_rep: String,
    pub reg_no: String,
    pub township: String,
    pub industry: String,
    pub status: String,
    /// The register's size class: large, medium, small, micro (empty: not given).
    pub size_class: String,
}

/// Why a firm matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    Typo,
    LegalRep,
    Pinyin,
    FormerName,
    NamePart,
    NamePrefix,
    Name,
    Code,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit<'a> {
    pub firm: &'a Firm,
    pub matched: Match,
}

struct Keys {
    name: Vec<char>,
    former: Vec<Vec<char>>,
    /// Whole pinyin of the name without tones or spaces, and its initials (e.g. shangyudafu, sydf).
    pinyin: String,
    initials: String,
}

/// The search index over the register.
#[derive(Default)]
pub struct SearchIndex {
    firms: Vec<Firm>,
    keys: Vec<Keys>,
}

/// Lower case, full-width to half-width, without spaces and the middle dot.
pub fn normalise(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace() && *c != '·')
        .collect()
}

fn pinyin_of(name: &str) -> (String, String) {
    use pinyin::ToPinyin;
    let (mut whole, mut initials) = (String::new(), String::new());
    for (c, p) in name.chars().zip(name.to_pinyin()) {
        match p {
            Some(p) => {
                whole.push_str(p.plain());
                initials.push_str(p.first_letter());
            }
            None if c.is_ascii_alphanumeric() => {
                let c = c.to_ascii_lowercase();
                whole.push(c);
                initials.push(c);
            }
            None => {}
        }
    }
    (whole, initials)
}

impl SearchIndex {
    pub fn new(mut firms: Vec<Firm>) -> SearchIndex {
        firms.sort_by(|a, b| a.uscc.cmp(&b.uscc));
        let keys = firms
            .iter()
            .map(|f| {
                let (pinyin, initials) = pinyin_of(&f.name);
                Keys {
                    name: normalise(&f.name).chars().collect(),
                    former: f.former_names.iter().map(|n| normalise(n).chars().collect()).collect(),
                    pinyin,
                    initials,
                }
            })
            .collect();
        SearchIndex { firms, keys }
    }

    pub fn len(&self) -> usize {
        self.firms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.firms.is_empty()
    }

    /// Every firm, by USCC.
    pub fn firms(&self) -> &[Firm] {
        &self.firms
    }

    pub fn get(&self, uscc: &str) -> Option<&Firm> {
        self.firms
            .binary_search_by(|f| f.uscc.as_str().cmp(uscc))
            .ok()
            .map(|i| &self.firms[i])
    }

    /// The best `limit` matches of `query`, best first.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit<'_>> {
        let q = normalise(query);
        if q.is_empty() {
            return Vec::new();
        }
        let qc: Vec<char> = q.chars().collect();
        let upper = q.to_uppercase();
        let ascii = q.chars().all(|c| c.is_ascii_alphanumeric());
        let mut hits: Vec<(Match, usize)> = Vec::new();
        for (i, (f, k)) in self.firms.iter().zip(&self.keys).enumerate() {
            let m = if f.uscc == upper || (!f.reg_no.is_empty() && f.reg_no == q) {
                Some(Match::Code)
            } else if k.name == qc {
                Some(Match::Name)
            } else if k.name.starts_with(&qc) {
                Some(Match::NamePrefix)
            } else if contains(&k.name, &qc) {
                Some(Match::NamePart)
            } else if k.former.iter().any(|n| contains(n, &qc)) {
                Some(Match::FormerName)
            } else if ascii && q.len() >= 2 && (k.pinyin.contains(&q) || k.initials.starts_with(&q)) {
                Some(Match::Pinyin)
            } else if !f.legal_rep.is_empty() && normalise(&f.legal_rep) == q {
                Some(Match::LegalRep)
            } else if qc.len() >= 3
                && !ascii
                && (within_one(&k.name, &qc) || k.former.iter().any(|n| within_one(n, &qc)))
            {
                Some(Match::Typo)
            } else {
                None
            };
            if let Some(m) = m {
                hits.push((m, i));
            }
        }
        hits.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(self.keys[a.1].name.len().cmp(&self.keys[b.1].name.len()))
                .then(a.1.cmp(&b.1))
        });
        hits.into_iter()
            .take(limit)
            .map(|(matched, i)| Hit {
                firm: &self.firms[i],
                matched,
            })
            .collect()
    }
}

fn contains(text: &[char], pat: &[char]) -> bool {
    pat.len() <= text.len() && text.windows(pat.len()).any(|w| w == pat)
}

/// Whether some part of `text` is within one edit (a character replaced, missing or extra) of `pat`
/// (approximate substring matching: edit distance with a free start and end in the text).
fn within_one(text: &[char], pat: &[char]) -> bool {
    let m = pat.len();
    // prev[j]: the fewest edits turning pat[..j] into a part of text ending here.
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0; m + 1];
    if prev[m] <= 1 {
        return true;
    }
    for &t in text {
        cur[0] = 0;
        for j in 1..=m {
            let sub = prev[j - 1] + usize::from(pat[j - 1] != t);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        if cur[m] <= 1 {
            return true;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_in_a_part_of_the_text() {
        let c = |s: &str| s.chars().collect::<Vec<char>>();
        assert!(within_one(&c("上虞达富化工有限公司"), &c("达福化工")));
        assert!(within_one(&c("上虞达富化工有限公司"), &c("达富化")));
        assert!(within_one(&c("上虞达富化工有限公司"), &c("达化工")));
        assert!(within_one(&c("上虞达富化工有限公司"), &c("达富x化工")));
        assert!(!within_one(&c("上虞达富化工有限公司"), &c("达福化学")));
    }

    #[test]
    fn normalises_width_case_and_spaces() {
        assert_eq!(normalise("ＡＢＣ 有限 公司"), "abc有限公司");
    }
}
