//! Normalisation of identifiers as people type and departments export them.

/// Folds full-width ASCII (U+FF01..U+FF5E) to half-width, drops spaces (including the ideographic
/// space U+3000 and tabs) and dashes of every width, and upper-cases ASCII letters.
pub fn compact_code(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        match c {
            ' ' | '\t' | '\u{3000}' | '\u{00A0}' | '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {}
            c => out.push(c.to_ascii_uppercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::compact_code;

    #[test]
    fn folds_width_space_dash_case() {
        assert_eq!(compact_code("９１ 330604-abc\u{3000}"), "91330604ABC");
        assert_eq!(compact_code("91—33"), "9133");
    }
}
