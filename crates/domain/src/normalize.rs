//! Normalisation of identifiers as people type and departments export them.

/// What one input character becomes: `None` if it is dropped (a space or dash), otherwise the
/// folded, upper-cased character. [`compact_code`] and [`compact_ascii_into`] share it, so the
/// allocation-free path can never disagree with the allocating one.
#[inline]
fn fold(c: char) -> Option<char> {
    let c = match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    match c {
        ' ' | '\t' | '\u{3000}' | '\u{00A0}' | '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' => None,
        c => Some(c.to_ascii_uppercase()),
    }
}

/// Folds full-width ASCII (U+FF01..U+FF5E) to half-width, drops spaces (including the ideographic
/// space U+3000 and tabs) and dashes of every width, and upper-cases ASCII letters.
pub fn compact_code(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    out.extend(raw.chars().filter_map(fold));
    out
}

/// [`compact_code`] without allocating, for hot paths: writes the compacted code into `buf` and
/// returns its length, or `None` if the compacted code has a non-ASCII character or is longer than
/// `buf` (the caller then falls back to [`compact_code`] to explain why the code is bad).
/// `buf[..n]` is always valid UTF-8 (ASCII).
pub fn compact_ascii_into(raw: &str, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for c in raw.chars().filter_map(fold) {
        if !c.is_ascii() || n == buf.len() {
            return None;
        }
        buf[n] = c as u8;
        n += 1;
    }
    Some(n)
}

/// Folds full-width ASCII (U+FF01..U+FF5E) to half-width and the ideographic space to a space;
/// everything else is kept (for values, not codes: dates, numbers, code-list entries). Borrows when
/// there is nothing to fold.
pub fn fold_width(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.is_ascii() {
        return std::borrow::Cow::Borrowed(raw);
    }
    std::borrow::Cow::Owned(
        raw.chars()
            .map(|c| match c as u32 {
                0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                0x3000 => ' ',
                _ => c,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::{compact_ascii_into, compact_code};

    #[test]
    fn folds_width_space_dash_case() {
        assert_eq!(compact_code("９１ 330604-abc\u{3000}"), "91330604ABC");
        assert_eq!(compact_code("91—33"), "9133");
    }

    #[test]
    fn ascii_into_agrees_with_compact_code() {
        for raw in [
            "９１ 330604-abc\u{3000}",
            "91—33",
            "",
            " - ",
            "ａｂｃ",
            "x\u{00A0}y\u{2212}z",
        ] {
            let mut buf = [0u8; 20];
            let n = compact_ascii_into(raw, &mut buf).expect(raw);
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), compact_code(raw), "{raw:?}");
        }
        let mut buf = [0u8; 4];
        assert_eq!(compact_ascii_into("12345", &mut buf), None, "too long");
        assert_eq!(compact_ascii_into("1-2-3-4", &mut buf), Some(4), "dashes do not count");
        assert_eq!(compact_ascii_into("中1", &mut buf), None, "non-ASCII");
    }
}
