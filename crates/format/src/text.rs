//! Text from devices, viewers and storage, made safe to show on a terminal.
//!
//! A gap reason, a file name, a URL in the audit trail or a field of a stored
//! document can hold escape sequences, carriage returns or newlines that
//! would move the cursor, recolour or clear the screen, or forge a line of
//! `custody verify` or `custody audit list`; Unicode bidirectional controls
//! make a line read in another order than it holds. Every command that
//! prints such text for people passes it through [`escape`] (JSON output
//! needs nothing: JSON escapes control characters itself).

use std::borrow::Cow;

/// The Unicode bidirectional formatting characters (`Bidi_Control`): they
/// reorder what follows them on screen.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` is shown escaped: C0 controls (newline and tab included),
/// DEL, C1 controls, bidirectional controls, and the backslash itself, so
/// that an escape in the output can always be told from the same
/// characters in the text.
fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || c == '\\'
}

/// `s` with every character a terminal would act on written out instead:
/// `\n`, `\r`, `\t`, `\\`, `\xHH` for the other C0 controls, DEL and the C1
/// controls, and `\u{HHHH}` for bidirectional controls. Text without such
/// characters is returned as it is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_bidi_control(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`] for a multi-line report the program composed itself: each
/// line is escaped, the line breaks between them are kept.
pub fn escape_lines(s: &str) -> String {
    s.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        for s in [
            "",
            "OK records/a/b",
            "扣押物品清单 — évidence",
            "a/b c-d_e.f",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(x) if x == s), "{s}");
        }
    }

    #[test]
    fn every_control_and_bidi_character_is_written_out() {
        assert_eq!(
            escape("a\x1b[2Jb\r\nOK forged\tline\u{7}"),
            "a\\x1b[2Jb\\r\\nOK forged\\tline\\x07"
        );
        assert_eq!(escape("\u{7f}\u{80}\u{9b}31m"), "\\x7f\\x80\\x9b31m");
        assert_eq!(escape("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(escape("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        // A backslash in the text cannot pass for an escape.
        assert_eq!(escape("\\x1b"), "\\\\x1b");
        // Nothing a terminal acts on is left, over the whole range.
        for c in (0u32..=0x3000).filter_map(char::from_u32) {
            let e = escape(&c.to_string()).into_owned();
            assert!(
                !e.chars().any(|x| x.is_control() || is_bidi_control(x)),
                "{c:?} became {e:?}"
            );
        }
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert_eq!(escape_lines("one\x1b\ntwo\r"), "one\\x1b\ntwo\\r");
    }
}
