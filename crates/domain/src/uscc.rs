//! Unified Social Credit Code (统一社会信用代码, GB 32100-2015).
//!
//! Layout: position 1 registration authority, 2 entity type, 3–8 region (GB/T 2260, current or
//! historical), 9–17 organisation code (GB 11714, with its own check character at 17), 18 the
//! weighted mod-31 check character. The alphabet is digits and capitals without I, O, S, V, Z.

use crate::normalize::compact_code;
use crate::orgcode;
use std::fmt;

/// The 31 characters of the code alphabet, in value order.
pub const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Registration authorities (position 1) and the entity types (position 2) each may issue.
const AUTHORITIES: &[(u8, &str, &[u8])] = &[
    (b'1', "机构编制", b"1239"),
    (b'2', "外交", b"19"),
    (b'3', "司法行政", b"1234569"),
    (b'4', "文化", b"19"),
    (b'5', "民政", b"1239"),
    (b'6', "旅游", b"129"),
    (b'7', "宗教", b"129"),
    (b'8', "工会", b"19"),
    (b'9', "工商/市场监管", b"123"),
    (b'A', "中央军委改革和编制办公室", b"19"),
    (b'N', "农业", b"1239"),
    (b'Y', "其他", b"1"),
];

/// Exactly which rule a bad code breaks. The `Display` text starts with a stable rule name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Nothing left after normalising.
    #[error("empty")]
    Empty,
    /// Not 18 characters (after normalising).
    #[error("length: a USCC has 18 characters, got {0}")]
    Length(usize),
    /// A character outside the code alphabet.
    #[error(
        "character: {ch:?} at position {pos} is not in the code alphabet (digits and capitals without I, O, S, V, Z)"
    )]
    Character {
        /// 1-based position.
        pos: usize,
        /// The offending character.
        ch: char,
    },
    /// Position 1 is not a registration authority.
    #[error("authority: {0:?} at position 1 is not a registration authority")]
    Authority(char),
    /// Position 2 is not an entity type the authority issues.
    #[error("entity-type: {ty:?} at position 2 is not an entity type of authority {authority:?}")]
    EntityType {
        /// Position 1.
        authority: char,
        /// Position 2.
        ty: char,
    },
    /// Positions 3–8 are not a GB/T 2260 region code.
    #[error("region: {0} at positions 3-8 is not a GB/T 2260 region code, current or historical")]
    Region(String),
    /// The embedded organisation code (positions 9–17) has a wrong GB 11714 check character.
    #[error("org-check: the embedded organisation code {code} should end in {expected}")]
    OrgCheck {
        /// Positions 9–17 as found.
        code: String,
        /// The check character positions 9–16 call for.
        expected: char,
    },
    /// The mod-31 check character (position 18) is wrong.
    #[error("check: the check character should be {expected}, got {got}")]
    Check {
        /// The check character positions 1–17 call for.
        expected: char,
        /// The check character found.
        got: char,
    },
}

impl UsccError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            UsccError::Empty => "empty",
            UsccError::Length(_) => "length",
            UsccError::Character { .. } => "character",
            UsccError::Authority(_) => "authority",
            UsccError::EntityType { .. } => "entity-type",
            UsccError::Region(_) => "region",
            UsccError::OrgCheck { .. } => "org-check",
            UsccError::Check { .. } => "check",
        }
    }
}

/// A valid USCC. It can only be built by parsing, so holding one means the code is valid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc([u8; 18]);

/// Each byte's value in the code alphabet, or `NOT_IN_ALPHABET` (a table: this is on the ingest hot path).
const VALUES: [u8; 256] = {
    let mut t = [NOT_IN_ALPHABET; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};
const NOT_IN_ALPHABET: u8 = u8::MAX;

fn value(c: u8) -> Option<u32> {
    match VALUES[c as usize] {
        NOT_IN_ALPHABET => None,
        v => Some(v as u32),
    }
}

/// The check character for the first 17 characters (which must be from the alphabet).
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        sum += value(*c)? * w;
    }
    Some(ALPHABET[((31 - sum % 31) % 31) as usize] as char)
}

impl Uscc {
    /// Normalises (full-width, spaces, dashes, case) and validates.
    pub fn parse(raw: &str) -> Result<Self, UsccError> {
        Self::parse_compact(&compact_code(raw))
    }

    /// Validates a code that is already compact; rules are checked in position order.
    pub fn parse_compact(s: &str) -> Result<Self, UsccError> {
        let n = s.chars().count();
        if n == 0 {
            return Err(UsccError::Empty);
        }
        if n != 18 {
            return Err(UsccError::Length(n));
        }
        let b = s.as_bytes();
        for (i, ch) in s.chars().enumerate() {
            if !ch.is_ascii() || value(ch as u8).is_none() {
                return Err(UsccError::Character { pos: i + 1, ch });
            }
        }
        let Some((_, _, types)) = AUTHORITIES.iter().find(|a| a.0 == b[0]) else {
            return Err(UsccError::Authority(b[0] as char));
        };
        if !types.contains(&b[1]) {
            return Err(UsccError::EntityType {
                authority: b[0] as char,
                ty: b[1] as char,
            });
        }
        let region = &s[2..8];
        if !region.bytes().all(|c| c.is_ascii_digit()) || !crate::region::is_region_code(region) {
            return Err(UsccError::Region(region.to_string()));
        }
        let expected_org = orgcode::check_char(&b[8..16]).unwrap_or('?');
        if b[16] as char != expected_org {
            return Err(UsccError::OrgCheck {
                code: s[8..17].to_string(),
                expected: expected_org,
            });
        }
        let expected = check_char(&b[..17]).unwrap_or('?');
        if b[17] as char != expected {
            return Err(UsccError::Check {
                expected,
                got: b[17] as char,
            });
        }
        let mut a = [0u8; 18];
        a.copy_from_slice(b);
        Ok(Uscc(a))
    }

    /// Builds a code from its first 17 characters by appending the check character. Used by the
    /// generator; the result is validated like any other code.
    /// A prefix of the wrong length or with a character outside the alphabet reports that rule
    /// (`length` counts characters, like `parse`).
    pub fn from_first17(first17: &str) -> Result<Self, UsccError> {
        // '?' is outside the alphabet, so if there is no check character the parse fails on the
        // length or on the first bad character, which comes before position 18.
        let c = check_char(first17.as_bytes()).unwrap_or('?');
        Self::parse_compact(&format!("{first17}{c}"))
    }

    /// The 18 characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII from the alphabet is ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
    /// The registration authority (position 1).
    pub fn authority(&self) -> char {
        self.0[0] as char
    }
    /// The entity type (position 2).
    pub fn entity_type(&self) -> char {
        self.0[1] as char
    }
    /// The registering authority's GB/T 2260 region code (positions 3–8).
    pub fn region(&self) -> &str {
        &self.as_str()[2..8]
    }
    /// The embedded GB 11714 organisation code (positions 9–17).
    pub fn org_code(&self) -> orgcode::OrgCode {
        orgcode::OrgCode::parse_compact(&self.as_str()[8..17]).expect("checked at parse")
    }
    /// The name of the registration authority.
    pub fn authority_name(&self) -> &'static str {
        AUTHORITIES.iter().find(|a| a.0 == self.0[0]).map(|a| a.1).unwrap_or("")
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({})", self.as_str())
    }
}
impl std::str::FromStr for Uscc {
    type Err = UsccError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse(s)
    }
}
impl serde::Serialize for Uscc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> serde::Deserialize<'de> for Uscc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Uscc::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = Uscc::parse(input);
        match expected {
            Ok(code) => assert_eq!(got.map(|u| u.to_string()), Ok(code.to_string()), "{input}"),
            Err(rule) => assert_eq!(got.map_err(|e| e.rule()), Err(rule), "{input}"),
        }
    }

    #[test]
    fn rules() {
        check("91110000600037341L", Ok("91110000600037341L"));
        check("９１１１００００６０００３７３４１ｌ", Ok("91110000600037341L"));
        check("91 110000 60003734-1l", Ok("91110000600037341L"));
        check("", Err("empty"));
        check("12345", Err("length"));
        check("9111000060003IOZSV", Err("character"));
        check("B1110000600037341L", Err("authority"));
        check("97110000600037341L", Err("entity-type"));
        check("91999900600037341L", Err("region"));
        check("91110000600037342L", Err("org-check"));
        check("91110000600037341N", Err("check"));
        check("中1110000600037341L", Err("character"));
    }

    #[test]
    fn from_first17_round_trips() {
        let u = Uscc::from_first17("91330604MA2D3C4F").err();
        assert!(u.is_some(), "16 characters is not 17");
        let u = Uscc::from_first17("91110000600037341").unwrap();
        assert_eq!(u.as_str(), "91110000600037341L");
        assert_eq!(u.org_code().as_str(), "600037341");
    }
}
