//! Legacy identifiers that departments still export, and the [`Resolver`] that maps any of them to a USCC.
//!
//! Before the USCC (2015) a firm was known by several numbers, and many exports still carry them:
//!
//! * [`RegNo`]: the 15-digit enterprise registration number (工商注册号, GB 12705-style): the
//!   registering authority's 6-digit GB/T 2260 region code, an 8-digit sequence and an ISO 7064
//!   MOD 11,10 check digit.
//! * [`OrgCode`]: the 9-character GB 11714 organisation code, which lives on inside the USCC
//!   (positions 9–17).
//! * [`TaxId`]: the old tax registration number (税务登记证号): 15 characters (region code +
//!   organisation code) for organisations, 20 characters (18-character resident ID number + 2
//!   digits) for individual businesses. An 18-character tax id is the USCC itself.
//!
//! [`candidates`] lists every valid reading of a raw string, [`classify`] insists on exactly one,
//! and [`Resolver`] turns any of them into the firm's [`Uscc`] through a crosswalk.

use crate::normalize::{compact_ascii_into, compact_code};
use crate::orgcode::{self, OrgCode, OrgCodeError};
use crate::region::{self, RegionCode};
use crate::uscc::{Uscc, UsccError};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// The longest legacy identifier (the 20-character individual-business tax id).
const MAX_LEN: usize = 20;

/// Implements `Display` (the code), `FromStr` (via `parse`) and serde as a string for an identifier
/// type with `as_str`-like `Display` and a `parse(&str) -> Result<Self, E>`.
macro_rules! string_like {
    ($t:ty, $err:ty) => {
        impl std::str::FromStr for $t {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::parse(s)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| (b - b'0') as u32)
}

// ---------------------------------------------------------------------------------------------
// Registration number
// ---------------------------------------------------------------------------------------------

/// Why a string is not a valid registration number. The `Display` text starts with a stable rule
/// name, also given by [`RegNoError::rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegNoError {
    /// Nothing left after normalising.
    #[error("empty")]
    Empty,
    /// Not 15 characters (after normalising).
    #[error("length: a registration number has 15 digits, got {0} characters")]
    Length(usize),
    /// A character that is not a digit.
    #[error("character: {ch:?} at position {pos} is not a digit")]
    Character {
        /// 1-based position.
        pos: usize,
        /// The offending character.
        ch: char,
    },
    /// Positions 1–6 are not a GB/T 2260 region code.
    #[error("region: {0} at positions 1-6 is not a GB/T 2260 region code, current or historical")]
    Region(String),
    /// The ISO 7064 MOD 11,10 check digit (position 15) is wrong.
    #[error("check: the ISO 7064 MOD 11,10 check digit should be {expected}, got {got}")]
    Check {
        /// The check digit the first 14 digits call for.
        expected: char,
        /// The check digit found.
        got: char,
    },
}

impl RegNoError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            RegNoError::Empty => "empty",
            RegNoError::Length(_) => "length",
            RegNoError::Character { .. } => "character",
            RegNoError::Region(_) => "region",
            RegNoError::Check { .. } => "check",
        }
    }
}

/// The ISO 7064 MOD 11,10 check digit of the first 14 digits of a registration number, or `None`
/// if `first14` is not exactly 14 ASCII digits.
///
/// Hybrid system: `p = 10`; for each digit `s = (p + d) mod 10` (0 counts as 10) and
/// `p = 2s mod 11`; the check digit `c` makes `(p + c) mod 10 == 1`.
pub fn reg_no_check_digit(first14: &[u8]) -> Option<char> {
    if first14.len() != 14 {
        return None;
    }
    let mut p = 10;
    for &b in first14 {
        let mut s = (p + digit(b)?) % 10;
        if s == 0 {
            s = 10;
        }
        p = (s * 2) % 11;
    }
    char::from_digit((11 - p) % 10, 10)
}

/// A valid 15-digit enterprise registration number (工商注册号).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegNo([u8; 15]);

impl RegNo {
    /// Normalises (full-width, spaces, dashes) and validates.
    pub fn parse(raw: &str) -> Result<Self, RegNoError> {
        Self::parse_compact(&compact_code(raw))
    }

    /// Validates a number that is already compact; rules are checked in position order.
    pub fn parse_compact(s: &str) -> Result<Self, RegNoError> {
        let n = s.chars().count();
        if n == 0 {
            return Err(RegNoError::Empty);
        }
        if n != 15 {
            return Err(RegNoError::Length(n));
        }
        if let Some((i, ch)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(RegNoError::Character { pos: i + 1, ch });
        }
        let b = s.as_bytes();
        if !region::is_region_code(&s[..6]) {
            return Err(RegNoError::Region(s[..6].to_string()));
        }
        let expected = reg_no_check_digit(&b[..14]).unwrap_or('?');
        if b[14] as char != expected {
            return Err(RegNoError::Check {
                expected,
                got: b[14] as char,
            });
        }
        let mut a = [0u8; 15];
        a.copy_from_slice(b);
        Ok(RegNo(a))
    }

    /// Builds a number from its first 14 digits by appending the check digit (used by the
    /// generator); the result is validated like any other number.
    pub fn from_first14(first14: &str) -> Result<Self, RegNoError> {
        let c = reg_no_check_digit(first14.as_bytes()).unwrap_or('?');
        Self::parse_compact(&format!("{first14}{c}"))
    }

    /// The 15 digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The registering authority's GB/T 2260 region code (positions 1–6).
    pub fn region(&self) -> &str {
        &self.as_str()[..6]
    }

    /// The 8-digit sequence (positions 7–14).
    pub fn sequence(&self) -> &str {
        &self.as_str()[6..14]
    }

    /// The check digit (position 15).
    pub fn check_digit(&self) -> char {
        self.0[14] as char
    }
}

impl fmt::Display for RegNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RegNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegNo({})", self.as_str())
    }
}

string_like!(RegNo, RegNoError);

// ---------------------------------------------------------------------------------------------
// Resident ID number
// ---------------------------------------------------------------------------------------------

fn or_x(pos: &usize) -> &'static str {
    if *pos == 18 {
        " or X"
    } else {
        ""
    }
}

/// ISO 7064 MOD 11-2 weights, 2^(17-i) mod 11.
const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Why a string is not a valid 18-character resident ID number. The `Display` text starts with a
/// stable rule name, also given by [`ResidentIdError::rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    /// Nothing left after normalising.
    #[error("empty")]
    Empty,
    /// Not 18 characters (after normalising).
    #[error("length: a resident ID number has 18 characters, got {0}")]
    Length(usize),
    /// A character that is not a digit (or, at position 18, `X`).
    #[error("character: {ch:?} at position {pos} is not a digit{}", or_x(.pos))]
    Character {
        /// 1-based position.
        pos: usize,
        /// The offending character.
        ch: char,
    },
    /// Positions 7–14 are not a calendar date from 1800 on.
    #[error("birth-date: {0} at positions 7-14 is not a date (YYYYMMDD, from 1800)")]
    BirthDate(String),
    /// The ISO 7064 MOD 11-2 check character (position 18) is wrong.
    #[error("check: the ISO 7064 MOD 11-2 check character should be {expected}, got {got}")]
    Check {
        /// The check character the first 17 digits call for.
        expected: char,
        /// The check character found.
        got: char,
    },
}

impl ResidentIdError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            ResidentIdError::Empty => "empty",
            ResidentIdError::Length(_) => "length",
            ResidentIdError::Character { .. } => "character",
            ResidentIdError::BirthDate(_) => "birth-date",
            ResidentIdError::Check { .. } => "check",
        }
    }
}

/// The ISO 7064 MOD 11-2 check character (`0`–`9` or `X`) of the first 17 digits of a resident ID
/// number, or `None` if `first17` is not exactly 17 ASCII digits.
pub fn resident_id_check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (&b, w) in first17.iter().zip(RESIDENT_WEIGHTS) {
        sum += digit(b)? * w;
    }
    Some(match (12 - sum % 11) % 11 {
        10 => 'X',
        c => char::from_digit(c, 10).unwrap_or('?'),
    })
}

fn birth_date_of(yyyymmdd: &[u8]) -> Option<chrono::NaiveDate> {
    let n = |r: std::ops::Range<usize>| -> Option<u32> {
        yyyymmdd[r].iter().try_fold(0, |acc, &b| Some(acc * 10 + digit(b)?))
    };
    let year = n(0..4)?;
    if year < 1800 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(year as i32, n(4..6)?, n(6..8)?)
}

/// A valid 18-character resident ID number (公民身份号码, GB 11643-1999): 6-digit address code,
/// 8-digit birth date, 3-digit sequence, ISO 7064 MOD 11-2 check character.
///
/// The address code is not checked against GB/T 2260 (numbers keep the code of their issue, and
/// the historical list is incomplete). This is personal data: `Debug` masks the birth date;
/// `Display` gives the whole number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentId([u8; 18]);

impl ResidentId {
    /// Normalises (full-width, spaces, dashes, a lower-case `x`) and validates.
    pub fn parse(raw: &str) -> Result<Self, ResidentIdError> {
        Self::parse_compact(&compact_code(raw))
    }

    /// Validates a number that is already compact; rules are checked in position order.
    pub fn parse_compact(s: &str) -> Result<Self, ResidentIdError> {
        let n = s.chars().count();
        if n == 0 {
            return Err(ResidentIdError::Empty);
        }
        if n != 18 {
            return Err(ResidentIdError::Length(n));
        }
        if let Some((i, ch)) = s
            .chars()
            .enumerate()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 17 && c == 'X')))
        {
            return Err(ResidentIdError::Character { pos: i + 1, ch });
        }
        let b = s.as_bytes();
        if birth_date_of(&b[6..14]).is_none() {
            return Err(ResidentIdError::BirthDate(s[6..14].to_string()));
        }
        let expected = resident_id_check_char(&b[..17]).unwrap_or('?');
        if b[17] as char != expected {
            return Err(ResidentIdError::Check {
                expected,
                got: b[17] as char,
            });
        }
        let mut a = [0u8; 18];
        a.copy_from_slice(b);
        Ok(ResidentId(a))
    }

    /// The 18 characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and `X` are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The address code of the place of first registration (positions 1–6).
    pub fn address_code(&self) -> &str {
        &self.as_str()[..6]
    }

    /// The birth date (positions 7–14).
    pub fn birth_date(&self) -> chrono::NaiveDate {
        birth_date_of(&self.0[6..14]).expect("checked at parse")
    }

    /// The number with the birth date masked (`330604********123X`), for logs and messages.
    pub fn masked(&self) -> String {
        let s = self.as_str();
        format!("{}********{}", &s[..6], &s[14..])
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

string_like!(ResidentId, ResidentIdError);

// ---------------------------------------------------------------------------------------------
// Tax registration number
// ---------------------------------------------------------------------------------------------

/// The two-digit sequence number (00–99) after the resident ID in a 20-character tax id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaxSeq(u8);

impl TaxSeq {
    /// The sequence number if it is at most 99.
    pub fn new(n: u8) -> Option<Self> {
        (n <= 99).then_some(TaxSeq(n))
    }

    /// The number, 0–99.
    pub fn value(self) -> u8 {
        self.0
    }
}

impl fmt::Display for TaxSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// Why a string is not a valid old tax registration number. The `Display` text starts with a
/// stable rule name, also given by [`TaxIdError::rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxIdError {
    /// Nothing left after normalising.
    #[error("empty")]
    Empty,
    /// Neither 15 nor 20 characters (after normalising).
    #[error(
        "length: an old tax registration number has 15 or 20 characters (an 18-character one is the USCC), got {0}"
    )]
    Length(usize),
    /// A character not allowed at its position.
    #[error("character: {ch:?} at position {pos} is not allowed there")]
    Character {
        /// 1-based position.
        pos: usize,
        /// The offending character.
        ch: char,
    },
    /// 15 characters: positions 1–6 are not a GB/T 2260 region code.
    #[error("region: {0} at positions 1-6 is not a GB/T 2260 region code, current or historical")]
    Region(String),
    /// 15 characters: the organisation code at positions 7–15 has a wrong GB 11714 check character.
    #[error("org-check: the embedded organisation code {code} should end in {expected}")]
    OrgCheck {
        /// The embedded organisation code as found.
        code: String,
        /// The check character its body calls for.
        expected: char,
    },
    /// 20 characters: positions 7–14 of the resident ID are not a date.
    #[error("birth-date: {0} at positions 7-14 is not a date (YYYYMMDD, from 1800)")]
    BirthDate(String),
    /// 20 characters: the resident ID's check character (position 18) is wrong.
    #[error("id-check: the resident ID check character should be {expected}, got {got}")]
    IdCheck {
        /// The check character the first 17 digits call for.
        expected: char,
        /// The check character found.
        got: char,
    },
}

impl TaxIdError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            TaxIdError::Empty => "empty",
            TaxIdError::Length(_) => "length",
            TaxIdError::Character { .. } => "character",
            TaxIdError::Region(_) => "region",
            TaxIdError::OrgCheck { .. } => "org-check",
            TaxIdError::BirthDate(_) => "birth-date",
            TaxIdError::IdCheck { .. } => "id-check",
        }
    }
}

/// Why a 15-character string is not an Org15 tax id, without allocating.
#[derive(Clone, Copy)]
enum Org15Fault {
    Character { pos: usize, ch: char },
    Region,
    OrgCheck,
}

/// A valid old tax registration number (税务登记证号). Every field is itself a validated type, so
/// any value of this enum is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaxId {
    /// 15 characters: the tax office's region code and the organisation code.
    Org15 {
        /// GB/T 2260 region code (positions 1–6).
        region: RegionCode,
        /// GB 11714 organisation code (positions 7–15).
        org: OrgCode,
    },
    /// 20 characters: the owner's resident ID number and a two-digit sequence (individual
    /// businesses).
    Person20 {
        /// The resident ID number (positions 1–18).
        id18: ResidentId,
        /// The sequence number (positions 19–20).
        seq: TaxSeq,
    },
}

impl TaxId {
    /// Normalises (full-width, spaces, dashes, case) and validates.
    pub fn parse(raw: &str) -> Result<Self, TaxIdError> {
        Self::parse_compact(&compact_code(raw))
    }

    /// Validates a number that is already compact; rules are checked in position order.
    pub fn parse_compact(s: &str) -> Result<Self, TaxIdError> {
        match s.chars().count() {
            0 => Err(TaxIdError::Empty),
            15 => Self::parse_org15(s),
            20 => Self::parse_person20(s),
            n => Err(TaxIdError::Length(n)),
        }
    }

    fn parse_org15(s: &str) -> Result<Self, TaxIdError> {
        Self::check_org15(s).map_err(|f| match f {
            Org15Fault::Character { pos, ch } => TaxIdError::Character { pos, ch },
            Org15Fault::Region => TaxIdError::Region(s[..6].to_string()),
            Org15Fault::OrgCheck => TaxIdError::OrgCheck {
                code: s[6..].to_string(),
                expected: orgcode::check_char(&s.as_bytes()[6..14]).unwrap_or('?'),
            },
        })
    }

    /// [`TaxId::parse_org15`] without building the error: a 15-digit registration number is
    /// usually not a tax id, and the resolver only needs to know that.
    fn check_org15(s: &str) -> Result<Self, Org15Fault> {
        let allowed = |i: usize, c: char| match i {
            0..=5 => c.is_ascii_digit(),
            6..=13 => c.is_ascii_digit() || c.is_ascii_uppercase(),
            _ => c.is_ascii_digit() || c == 'X',
        };
        if let Some((i, ch)) = s.chars().enumerate().find(|&(i, c)| !allowed(i, c)) {
            return Err(Org15Fault::Character { pos: i + 1, ch });
        }
        let region = RegionCode::parse(&s[..6]).ok_or(Org15Fault::Region)?;
        let org = OrgCode::parse_compact(&s[6..]).map_err(|_| Org15Fault::OrgCheck)?;
        Ok(TaxId::Org15 { region, org })
    }

    fn parse_person20(s: &str) -> Result<Self, TaxIdError> {
        // Positions 19-20 are digits; the resident ID reports its own positions 1-18.
        let id18 = match s.char_indices().nth(18) {
            Some((at, _)) => ResidentId::parse_compact(&s[..at]),
            None => Err(ResidentIdError::Length(s.chars().count())),
        };
        let id18 = id18.map_err(|e| match e {
            ResidentIdError::Character { pos, ch } => TaxIdError::Character { pos, ch },
            ResidentIdError::BirthDate(d) => TaxIdError::BirthDate(d),
            ResidentIdError::Check { expected, got } => TaxIdError::IdCheck { expected, got },
            ResidentIdError::Empty | ResidentIdError::Length(_) => TaxIdError::Length(s.chars().count()),
        });
        // A bad character in the sequence only counts if the resident ID had none before it.
        let seq_bad = s.chars().enumerate().skip(18).find(|(_, c)| !c.is_ascii_digit());
        let id18 = match (id18, seq_bad) {
            (Err(e @ TaxIdError::Character { .. }), _) => return Err(e),
            (_, Some((i, ch))) => return Err(TaxIdError::Character { pos: i + 1, ch }),
            (r, None) => r?,
        };
        let b = s.as_bytes();
        let seq = TaxSeq(((b[18] - b'0') * 10) + (b[19] - b'0'));
        Ok(TaxId::Person20 { id18, seq })
    }

    /// The organisation code of a 15-character tax id.
    pub fn org_code(&self) -> Option<OrgCode> {
        match self {
            TaxId::Org15 { org, .. } => Some(*org),
            TaxId::Person20 { .. } => None,
        }
    }

    /// The resident ID number of a 20-character tax id.
    pub fn resident_id(&self) -> Option<ResidentId> {
        match self {
            TaxId::Org15 { .. } => None,
            TaxId::Person20 { id18, .. } => Some(*id18),
        }
    }

    /// The tax id with a resident ID's birth date masked, for logs and messages.
    pub fn masked(&self) -> String {
        match self {
            TaxId::Org15 { .. } => self.to_string(),
            TaxId::Person20 { id18, seq } => format!("{}{seq}", id18.masked()),
        }
    }
}

impl fmt::Display for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaxId::Org15 { region, org } => write!(f, "{region}{org}"),
            TaxId::Person20 { id18, seq } => write!(f, "{id18}{seq}"),
        }
    }
}

string_like!(TaxId, TaxIdError);

// ---------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------

/// The kinds of identifier [`classify`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdKind {
    /// Unified Social Credit Code, 18 characters.
    Uscc,
    /// Registration number, 15 digits.
    RegNo,
    /// Organisation code, 9 characters.
    OrgCode,
    /// Old tax registration number, 15 or 20 characters.
    TaxId,
}

impl IdKind {
    /// A stable machine-readable name: `uscc`, `reg-no`, `org-code` or `tax-id`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Uscc => "uscc",
            IdKind::RegNo => "reg-no",
            IdKind::OrgCode => "org-code",
            IdKind::TaxId => "tax-id",
        }
    }

    /// The English name, for messages.
    pub fn description(self) -> &'static str {
        match self {
            IdKind::Uscc => "USCC",
            IdKind::RegNo => "registration number",
            IdKind::OrgCode => "organisation code",
            IdKind::TaxId => "tax id",
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One valid reading of an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegacyId {
    /// A Unified Social Credit Code (also what an 18-character tax id is).
    Uscc(Uscc),
    /// A 15-digit registration number.
    RegNo(RegNo),
    /// A 9-character organisation code.
    OrgCode(OrgCode),
    /// A 15- or 20-character old tax registration number.
    TaxId(TaxId),
}

impl LegacyId {
    /// Which kind of identifier this is.
    pub fn kind(&self) -> IdKind {
        match self {
            LegacyId::Uscc(_) => IdKind::Uscc,
            LegacyId::RegNo(_) => IdKind::RegNo,
            LegacyId::OrgCode(_) => IdKind::OrgCode,
            LegacyId::TaxId(_) => IdKind::TaxId,
        }
    }

    /// The organisation code the identifier carries: a USCC's positions 9–17, the code itself,
    /// or a 15-character tax id's positions 7–15.
    pub fn org_code(&self) -> Option<OrgCode> {
        match self {
            LegacyId::Uscc(u) => Some(u.org_code()),
            LegacyId::OrgCode(o) => Some(*o),
            LegacyId::TaxId(t) => t.org_code(),
            LegacyId::RegNo(_) => None,
        }
    }
}

impl fmt::Display for LegacyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LegacyId::Uscc(x) => x.fmt(f),
            LegacyId::RegNo(x) => x.fmt(f),
            LegacyId::OrgCode(x) => x.fmt(f),
            LegacyId::TaxId(x) => x.fmt(f),
        }
    }
}

/// Why a string of the right length is not a valid identifier of one kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidateError {
    /// Not a valid USCC.
    #[error("as a USCC: {0}")]
    Uscc(UsccError),
    /// Not a valid registration number.
    #[error("as a registration number: {0}")]
    RegNo(RegNoError),
    /// Not a valid organisation code.
    #[error("as an organisation code: {0}")]
    OrgCode(OrgCodeError),
    /// Not a valid old tax registration number.
    #[error("as a tax id: {0}")]
    TaxId(TaxIdError),
}

impl CandidateError {
    /// The kind of identifier the string failed to be.
    pub fn kind(&self) -> IdKind {
        match self {
            CandidateError::Uscc(_) => IdKind::Uscc,
            CandidateError::RegNo(_) => IdKind::RegNo,
            CandidateError::OrgCode(_) => IdKind::OrgCode,
            CandidateError::TaxId(_) => IdKind::TaxId,
        }
    }

    /// The inner error's stable rule name (`check`, `region`, `org-check`, ...).
    pub fn rule(&self) -> &'static str {
        match self {
            CandidateError::Uscc(e) => e.rule(),
            CandidateError::RegNo(e) => e.rule(),
            CandidateError::OrgCode(e) => e.rule(),
            CandidateError::TaxId(e) => e.rule(),
        }
    }
}

fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(sep)
}

fn describe_all(ids: &[LegacyId]) -> String {
    let v: Vec<String> = ids
        .iter()
        .map(|i| format!("{} {}", i.kind().description(), i))
        .collect();
    v.join(" and as ")
}

/// Why [`classify`] found no single reading. The `Display` text starts with a stable rule name,
/// also given by [`IdError::rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing left after normalising.
    #[error("empty")]
    Empty,
    /// No identifier has this many characters (after normalising).
    #[error("length: no identifier has {0} characters (organisation code 9, registration number or tax id 15, USCC 18, tax id 20)")]
    Length(usize),
    /// The length fits, but the string is invalid as every kind of that length; one error per kind.
    #[error("invalid: {}", join(.0, "; "))]
    Invalid(Vec<CandidateError>),
    /// Valid as more than one kind.
    #[error("ambiguous: valid as {}", describe_all(.0))]
    Ambiguous(Vec<LegacyId>),
}

impl IdError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            IdError::Empty => "empty",
            IdError::Length(_) => "length",
            IdError::Invalid(_) => "invalid",
            IdError::Ambiguous(_) => "ambiguous",
        }
    }
}

/// The readings of one compact string: at most two kinds share a length (15: registration number
/// and tax id). Built without allocating when every reading is valid.
struct Readings {
    items: [Option<Result<LegacyId, CandidateError>>; 2],
}

impl Readings {
    fn iter(&self) -> impl Iterator<Item = &Result<LegacyId, CandidateError>> {
        self.items.iter().flatten()
    }

    fn valid(&self) -> impl Iterator<Item = &LegacyId> {
        self.iter().filter_map(|r| r.as_ref().ok())
    }

    fn errors(&self) -> Vec<CandidateError> {
        self.iter().filter_map(|r| r.as_ref().err().cloned()).collect()
    }
}

/// Reads a compact string as every kind of identifier of its length.
fn readings(s: &str) -> Result<Readings, IdError> {
    let one = |r| Ok(Readings { items: [Some(r), None] });
    match s.chars().count() {
        0 => Err(IdError::Empty),
        9 => one(OrgCode::parse_compact(s)
            .map(LegacyId::OrgCode)
            .map_err(CandidateError::OrgCode)),
        15 => Ok(Readings {
            items: [
                Some(
                    RegNo::parse_compact(s)
                        .map(LegacyId::RegNo)
                        .map_err(CandidateError::RegNo),
                ),
                Some(
                    TaxId::parse_compact(s)
                        .map(LegacyId::TaxId)
                        .map_err(CandidateError::TaxId),
                ),
            ],
        }),
        18 => one(Uscc::parse_compact(s).map(LegacyId::Uscc).map_err(CandidateError::Uscc)),
        20 => one(TaxId::parse_compact(s)
            .map(LegacyId::TaxId)
            .map_err(CandidateError::TaxId)),
        n => Err(IdError::Length(n)),
    }
}

/// The valid readings of a compact string, like `readings(s)?.valid()` but without building the
/// errors of invalid readings (the resolver's hot path). A unit test keeps the two equal.
fn valid_readings(s: &str) -> Result<[Option<LegacyId>; 2], IdError> {
    Ok(match s.chars().count() {
        0 => return Err(IdError::Empty),
        9 => [OrgCode::parse_compact(s).ok().map(LegacyId::OrgCode), None],
        15 => [
            RegNo::parse_compact(s).ok().map(LegacyId::RegNo),
            TaxId::check_org15(s).ok().map(LegacyId::TaxId),
        ],
        18 => [Uscc::parse_compact(s).ok().map(LegacyId::Uscc), None],
        20 => [TaxId::parse_compact(s).ok().map(LegacyId::TaxId), None],
        n => return Err(IdError::Length(n)),
    })
}

/// Every valid reading of `raw` after normalising ([`compact_code`]), in the order USCC,
/// registration number, organisation code, tax id. A 15-digit string can be both a registration
/// number and a tax id; most strings have no or one reading.
pub fn candidates(raw: &str) -> Vec<LegacyId> {
    match readings(&compact_code(raw)) {
        Ok(r) => r.valid().copied().collect(),
        Err(_) => Vec::new(),
    }
}

/// The single valid reading of `raw`, or why there is none (empty, no identifier of this length,
/// invalid as each kind of this length with the reason, or ambiguous).
pub fn classify(raw: &str) -> Result<LegacyId, IdError> {
    let r = readings(&compact_code(raw))?;
    let valid: Vec<LegacyId> = r.valid().copied().collect();
    match valid.len() {
        0 => Err(IdError::Invalid(r.errors())),
        1 => Ok(valid[0]),
        _ => Err(IdError::Ambiguous(valid)),
    }
}

// ---------------------------------------------------------------------------------------------
// Resolver
// ---------------------------------------------------------------------------------------------

/// Why [`Resolver::resolve`] found no firm. The `Display` text starts with a stable rule name, also
/// given by [`ResolveError::rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No valid reading: empty, a length no identifier has, or invalid as each kind.
    #[error("invalid: {}", invalid_reason(.0))]
    Invalid(IdError),
    /// A valid organisation code that the crosswalk does not know.
    #[error("unknown-org-code: organisation code {0} is not in the crosswalk")]
    UnknownOrgCode(OrgCode),
    /// A valid registration number that the crosswalk does not know. A 15-digit string that is
    /// also a valid tax id reports this when neither reading is known.
    #[error("unknown-reg-no: registration number {0} is not in the crosswalk")]
    UnknownRegNo(RegNo),
    /// A valid tax id that the crosswalk does not know (nor, for a 15-character one, its
    /// organisation code).
    #[error("unknown-tax-id: tax id {} is not in the crosswalk", .0.masked())]
    UnknownTaxId(TaxId),
    /// The identifier leads to two firms: two readings resolve to different firms, or the
    /// crosswalk itself maps it to two firms.
    #[error("ambiguous: the identifier resolves to more than one firm ({first} and {second})")]
    Ambiguous {
        /// One firm.
        first: Uscc,
        /// Another firm.
        second: Uscc,
    },
}

fn invalid_reason(e: &IdError) -> String {
    match e {
        IdError::Invalid(v) => join(v, "; "),
        e => e.to_string(),
    }
}

impl ResolveError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            ResolveError::Invalid(_) => "invalid",
            ResolveError::UnknownOrgCode(_) => "unknown-org-code",
            ResolveError::UnknownRegNo(_) => "unknown-reg-no",
            ResolveError::UnknownTaxId(_) => "unknown-tax-id",
            ResolveError::Ambiguous { .. } => "ambiguous",
        }
    }
}

/// Why [`Resolver::add_alias`] refused a crosswalk entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// The alias is not a valid identifier of any kind.
    #[error(transparent)]
    Invalid(IdError),
    /// The alias is a valid USCC of another firm; a valid USCC always resolves to itself.
    #[error("uscc-alias: {alias} is a valid USCC, which always resolves to itself, not to {uscc}")]
    Uscc {
        /// The alias given.
        alias: Uscc,
        /// The firm it was to resolve to.
        uscc: Uscc,
    },
}

impl AliasError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            AliasError::Invalid(e) => e.rule(),
            AliasError::Uscc { .. } => "uscc-alias",
        }
    }
}

/// A fast, non-cryptographic hasher for the resolver's small fixed-size keys: FxHash-style mixing
/// with a 64-bit finaliser so that the low bits (which pick the bucket) depend on every byte. The
/// keys come from the trusted crosswalk, so hash flooding is not a concern.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // MurmurHash3's fmix64.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type Index<K> = HashMap<K, Entry, BuildHasherDefault<KeyHasher>>;

/// What the crosswalk says about one identifier: one firm, or (a data error) two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    One(Uscc),
    Conflict(Uscc, Uscc),
}

impl Entry {
    fn add(&mut self, u: Uscc) {
        if let Entry::One(first) = *self {
            if first != u {
                *self = Entry::Conflict(first, u);
            }
        }
    }

    fn get(self) -> Result<Uscc, ResolveError> {
        match self {
            Entry::One(u) => Ok(u),
            Entry::Conflict(first, second) => Err(ResolveError::Ambiguous { first, second }),
        }
    }
}

fn insert<K: std::hash::Hash + Eq>(index: &mut Index<K>, key: K, uscc: Uscc) {
    index.entry(key).and_modify(|e| e.add(uscc)).or_insert(Entry::One(uscc));
}

/// Resolves any identifier a department exports to the firm's USCC, through a crosswalk of
/// organisation codes, registration numbers and other legacy ids.
///
/// A valid USCC resolves to itself whether or not the crosswalk knows it (the store decides whether
/// the firm is known). When the crosswalk maps one identifier to two firms, resolving it reports
/// `ambiguous` (see [`Resolver::conflicts`]). `resolve` does not allocate unless the identifier is
/// invalid (normalising into a stack buffer, hashing fixed-size keys with a fast hasher); the
/// error of an unknown identifier allocates only when displayed.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    by_org: Index<OrgCode>,
    by_reg: Index<RegNo>,
    by_tax: Index<TaxId>,
}

impl Resolver {
    /// An empty crosswalk.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty crosswalk with room for `firms` firms with registration numbers.
    pub fn with_capacity(firms: usize) -> Self {
        Resolver {
            by_org: Index::with_capacity_and_hasher(firms, Default::default()),
            by_reg: Index::with_capacity_and_hasher(firms, Default::default()),
            by_tax: Index::default(),
        }
    }

    /// Adds a firm: its embedded organisation code (USCC positions 9–17) and, if given, its
    /// registration number will resolve to `uscc`.
    pub fn add_firm(&mut self, uscc: Uscc, reg_no: Option<RegNo>) {
        insert(&mut self.by_org, uscc.org_code(), uscc);
        if let Some(r) = reg_no {
            insert(&mut self.by_reg, r, uscc);
        }
    }

    /// Adds another crosswalk entry: `raw_id` (any valid legacy id, e.g. the 20-character tax id of
    /// an individual business) will resolve to `uscc`. A 15-digit id valid both as a registration
    /// number and as a tax id is entered under both readings.
    pub fn add_alias(&mut self, raw_id: &str, uscc: Uscc) -> Result<(), AliasError> {
        let r = readings(&compact_code(raw_id)).map_err(AliasError::Invalid)?;
        if r.valid().next().is_none() {
            return Err(AliasError::Invalid(IdError::Invalid(r.errors())));
        }
        if let Some(&alias) = r.valid().find_map(|id| match id {
            LegacyId::Uscc(a) if *a != uscc => Some(a),
            _ => None,
        }) {
            return Err(AliasError::Uscc { alias, uscc });
        }
        for id in r.valid() {
            match *id {
                LegacyId::Uscc(_) => {}
                LegacyId::RegNo(k) => insert(&mut self.by_reg, k, uscc),
                LegacyId::OrgCode(k) => insert(&mut self.by_org, k, uscc),
                LegacyId::TaxId(k) => insert(&mut self.by_tax, k, uscc),
            }
        }
        Ok(())
    }

    /// The firm an already parsed identifier belongs to. A 15-character tax id resolves through
    /// the tax-id aliases first, then through its organisation code.
    pub fn resolve_id(&self, id: &LegacyId) -> Result<Uscc, ResolveError> {
        match id {
            LegacyId::Uscc(u) => Ok(*u),
            LegacyId::RegNo(r) => self.by_reg.get(r).ok_or(ResolveError::UnknownRegNo(*r))?.get(),
            LegacyId::OrgCode(o) => self.by_org.get(o).ok_or(ResolveError::UnknownOrgCode(*o))?.get(),
            LegacyId::TaxId(t) => {
                let entry = self.by_tax.get(t);
                let entry = entry.or_else(|| t.org_code().and_then(|o| self.by_org.get(&o)));
                entry.ok_or(ResolveError::UnknownTaxId(*t))?.get()
            }
        }
    }

    /// The firm `raw` identifies, after normalising ([`compact_code`]). Every valid reading is
    /// tried; readings that resolve must agree on the firm (else `ambiguous`); if none resolves,
    /// the first reading's `unknown-*` error is returned (registration number before tax id).
    pub fn resolve(&self, raw: &str) -> Result<Uscc, ResolveError> {
        let mut buf = [0u8; MAX_LEN];
        let compact = compact_ascii_into(raw, &mut buf).and_then(|n| std::str::from_utf8(&buf[..n]).ok());
        let Some(s) = compact else {
            // Non-ASCII or too long: no identifier, but find out why (this allocates).
            return match classify(raw) {
                Ok(id) => self.resolve_id(&id),
                Err(e) => Err(ResolveError::Invalid(e)),
            };
        };
        let valid = valid_readings(s).map_err(ResolveError::Invalid)?;
        let mut found: Option<Uscc> = None;
        let mut first_err: Option<ResolveError> = None;
        for id in valid.iter().flatten() {
            match self.resolve_id(id) {
                Ok(u) => match found {
                    Some(f) if f != u => return Err(ResolveError::Ambiguous { first: f, second: u }),
                    _ => found = Some(u),
                },
                Err(e @ ResolveError::Ambiguous { .. }) => return Err(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match (found, first_err) {
            (Some(u), _) => Ok(u),
            (None, Some(e)) => Err(e),
            // No valid reading: now build the reasons (this allocates).
            (None, None) => Err(ResolveError::Invalid(match readings(s) {
                Ok(r) => IdError::Invalid(r.errors()),
                Err(e) => e,
            })),
        }
    }

    /// The crosswalk's own contradictions: identifiers it maps to two firms (both given).
    pub fn conflicts(&self) -> Vec<(LegacyId, Uscc, Uscc)> {
        fn of<K: Copy>(index: &Index<K>, wrap: fn(K) -> LegacyId) -> impl Iterator<Item = (LegacyId, Uscc, Uscc)> + '_ {
            index.iter().filter_map(move |(k, e)| match *e {
                Entry::Conflict(a, b) => Some((wrap(*k), a, b)),
                Entry::One(_) => None,
            })
        }
        let mut v: Vec<_> = of(&self.by_org, LegacyId::OrgCode)
            .chain(of(&self.by_reg, LegacyId::RegNo))
            .chain(of(&self.by_tax, LegacyId::TaxId))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resolver's allocation-free `valid_readings` agrees with `readings` on generated strings
    /// of every identifier length, mostly digits so that both 15-character readings occur.
    #[test]
    fn valid_readings_agree_with_readings() {
        let mut state = 2015u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let (mut both, mut one) = (0, 0);
        for i in 0..200_000 {
            let len = [9, 15, 15, 15, 18, 20, 0, 7][i % 8];
            let prefix = ["330604", "91330604", "110105", "339999"][next(4) as usize];
            let mut s: String = prefix.chars().take(len).collect();
            while s.len() < len {
                let c = if next(10) == 0 {
                    b"AXMZ"[next(4) as usize]
                } else {
                    b'0' + next(10) as u8
                };
                s.push(c as char);
            }
            let fast = valid_readings(&s).map(|v| v.iter().flatten().copied().collect::<Vec<_>>());
            let slow = readings(&s).map(|r| r.valid().copied().collect::<Vec<_>>());
            assert_eq!(fast, slow, "{s}");
            match fast.map(|v| v.len()) {
                Ok(2) => both += 1,
                Ok(1) => one += 1,
                _ => {}
            }
        }
        assert!(both > 10 && one > 1_000, "both {both}, one {one}");
    }
}
