//! Organisation codes (组织机构代码, GB 11714-1997): 8 body characters and a check character.

use std::fmt;

const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Why a string is not a valid organisation code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgCodeError {
    /// Not 9 characters.
    #[error("length: an organisation code has 9 characters, got {0}")]
    Length(usize),
    /// A body character (positions 1–8) that is not a digit or capital letter.
    #[error("character: {ch:?} at position {pos} is not a digit or capital letter")]
    Character {
        /// 1-based position.
        pos: usize,
        /// The offending character.
        ch: char,
    },
    /// The GB 11714 check character (position 9) is wrong.
    #[error("org-check: the GB 11714 check character should be {expected}, got {got}")]
    Check {
        /// The check character the body calls for.
        expected: char,
        /// The check character found.
        got: char,
    },
}

impl OrgCodeError {
    /// The stable, machine-readable rule name (the text before the first colon).
    pub fn rule(&self) -> &'static str {
        match self {
            OrgCodeError::Length(_) => "length",
            OrgCodeError::Character { .. } => "character",
            OrgCodeError::Check { .. } => "org-check",
        }
    }
}

/// A valid 9-character organisation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgCode([u8; 9]);

fn body_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u32),
        b'A'..=b'Z' => Some((b - b'A') as u32 + 10),
        _ => None,
    }
}

/// The GB 11714 check character of an 8-character body, or `None` if the body has a bad character.
pub fn check_char(body: &[u8]) -> Option<char> {
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (b, w) in body.iter().zip(WEIGHTS) {
        sum += body_value(*b)? * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        c => char::from_digit(c, 10).unwrap_or('0'),
    })
}

impl OrgCode {
    /// Parses an already compacted code (see [`crate::normalize::compact_code`]).
    pub fn parse_compact(s: &str) -> Result<Self, OrgCodeError> {
        let n = s.chars().count();
        if n != 9 {
            return Err(OrgCodeError::Length(n));
        }
        let b = s.as_bytes();
        for (pos, &c) in b[..8].iter().enumerate() {
            if body_value(c).is_none() {
                return Err(OrgCodeError::Character {
                    pos: pos + 1,
                    ch: c as char,
                });
            }
        }
        let expected = check_char(&b[..8]).unwrap_or('?');
        if b[8] as char != expected {
            return Err(OrgCodeError::Check {
                expected,
                got: b[8] as char,
            });
        }
        let mut a = [0u8; 9];
        a.copy_from_slice(b);
        Ok(OrgCode(a))
    }

    /// Normalises (full-width, spaces, dashes, case) and parses.
    pub fn parse(raw: &str) -> Result<Self, OrgCodeError> {
        Self::parse_compact(&crate::normalize::compact_code(raw))
    }

    /// The 9 characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        // Embedded in 91110000600037341L and 9144030071526726XG.
        assert!(OrgCode::parse("60003734-1").is_ok());
        assert!(OrgCode::parse("71526726X").is_ok());
        assert_eq!(
            OrgCode::parse("600037342"),
            Err(OrgCodeError::Check {
                expected: '1',
                got: '2'
            })
        );
    }
}
