//! One log line, text or JSON: the time, the level, the spans the line names ([`LineSpans`]),
//! the target, then the fields, all appended to the caller's buffer with no copy of the line.

use tracing::Level;

use super::{escape::write_json_str, timestamp::write_timestamp, visitor::Visitor};

/// The spans a line names, outermost first: an event's, from the subscriber's registry, or
/// one a line's writer knows without asking it.
pub trait LineSpans {
    /// `span{fields}: ` for each span, in a text line.
    fn write_text(&self, line: &mut String);
    /// `{"name":"span",fields}` for each span, in a JSON line, each after a comma unless it is
    /// the `first`, which writing one clears.
    fn write_json(&self, line: &mut String, first: &mut bool);
}

/// The spans of `A`, outermost, then those of `B`.
impl<A: LineSpans, B: LineSpans> LineSpans for (A, B) {
    fn write_text(&self, line: &mut String) {
        self.0.write_text(line);
        self.1.write_text(line);
    }

    fn write_json(&self, line: &mut String, first: &mut bool) {
        self.0.write_json(line, first);
        self.1.write_json(line, first);
    }
}

/// One line: the time, `level`, the `spans`, `target`, and the fields `write_fields` writes; in
/// JSON if `json`.
pub fn write_line(
    line: &mut String,
    json: bool,
    level: &Level,
    target: &str,
    spans: &impl LineSpans,
    write_fields: impl FnOnce(&mut Visitor<'_>),
) {
    if json {
        json_line(line, level, target, spans, write_fields);
    } else {
        text_line(line, level, target, spans, write_fields);
    }
}

/// `2026-01-02T03:04:05.000006Z  INFO request{client=127.0.0.1}: target: name="value" ...`
fn text_line(
    line: &mut String,
    level: &Level,
    target: &str,
    spans: &impl LineSpans,
    write_fields: impl FnOnce(&mut Visitor<'_>),
) {
    write_timestamp(line);
    line.push_str(match *level {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    });
    spans.write_text(line);
    line.push_str(target);
    line.push_str(": ");
    write_fields(&mut Visitor::new(line, false));
    line.push('\n');
}

/// `{"timestamp":"...","level":"INFO","target":"...","spans":[{"name":"request",...}],"fields":{...}}`
fn json_line(
    line: &mut String,
    level: &Level,
    target: &str,
    spans: &impl LineSpans,
    write_fields: impl FnOnce(&mut Visitor<'_>),
) {
    line.push_str("{\"timestamp\":\"");
    write_timestamp(line);
    line.push_str("\",\"level\":\"");
    line.push_str(level.as_str());
    line.push_str("\",\"target\":");
    let _ = write_json_str(line, target);
    line.push_str(",\"spans\":[");
    spans.write_json(line, &mut true);
    line.push_str("],\"fields\":{");
    write_fields(&mut Visitor::new(line, true));
    line.push_str("}}\n");
}
