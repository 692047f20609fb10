//! Colours as the timeline writes them: `#RRGGBB` or `#RRGGBBAA` (CSS hex notation, alpha last).

/// Parses `#RRGGBB` or `#RRGGBBAA` into `(r, g, b, a)`, each 0..=255; `None` for anything else
/// (no `#`, other lengths, non-hex digits).
pub fn parse_color(s: &str) -> Option<(u8, u8, u8, u8)> {
    let hex = s.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    let a = if hex.len() == 8 { byte(6)? } else { 255 };
    Some((byte(0)?, byte(2)?, byte(4)?, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse() {
        assert_eq!(parse_color("#ff000080"), Some((255, 0, 0, 128)));
        assert_eq!(parse_color("#00FF00"), Some((0, 255, 0, 255)));
        assert_eq!(parse_color("00FF00"), None);
        assert_eq!(parse_color("#00FF0"), None);
    }
}
