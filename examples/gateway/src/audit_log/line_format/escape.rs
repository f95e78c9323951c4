//! Values made safe for a line: control characters escaped in text, so no value can start a
//! line of its own, and JSON strings escaped as JSON requires.

use std::fmt::{self, Write as _};

/// Escapes control characters (`\n`, `\r`, `\t`, `\u{1b}`, ...) in what it is given, so no value
/// written bare in a text line can start a line of its own.
pub(super) struct LineEscaped<'a, W>(pub(super) &'a mut W);

impl<W: fmt::Write> fmt::Write for LineEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            if byte >= 0x20 && byte != 0x7f {
                continue;
            }
            self.0.write_str(&text[plain..i])?;
            write!(self.0, "{}", char::from(byte).escape_default())?;
            plain = i + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

/// Whether `text` is printable ASCII without quotes or backslashes: written as it is between
/// quotes. One pass over every byte, without an early exit, as the values are short.
pub(crate) fn is_plain(text: &str) -> bool {
    text.bytes().fold(true, |plain, byte| {
        plain & (0x20..0x7f).contains(&byte) & (byte != b'"') & (byte != b'\\')
    })
}

/// `text` as a JSON string.
pub(super) fn write_json_str(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    JsonEscaped(writer).write_str(text)?;
    writer.write_char('"')
}

/// Escapes what it is given as the inside of a JSON string.
pub(super) struct JsonEscaped<'a, W>(pub(super) &'a mut W);

impl<W: fmt::Write> fmt::Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if is_plain(text) {
            return self.0.write_str(text);
        }
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_printable_ascii_without_quotes_or_backslashes_is_plain() {
        assert!(is_plain(""));
        let printable: String = (0x20..0x7f)
            .filter(|&byte| byte != b'"' && byte != b'\\')
            .map(char::from)
            .collect();
        assert!(is_plain(&printable));
        for bad in ["\"", "\\", "\u{1f}", "\u{7f}", "\n", "é"] {
            // In the first sixteen bytes, at their end, in the second sixteen, in the rest.
            for at in [0, 15, 16, 40] {
                let mut text = "a".repeat(41);
                text.replace_range(at..=at, bad);
                assert!(!is_plain(&text), "{bad:?} at {at}");
            }
        }
    }
}
