//! The log's lines: a `tracing` layer that writes each event as one line, text or JSON, straight
//! into the emitting thread's buffer, through the line and field writers (`write_line`,
//! [`Visitor`]) that `decision_lines` shares. Written for speed, as every audited request pays
//! it: no colours, no `Debug` round trip for plain strings, no copy of the line, and the date and
//! time to the second made once a second per thread.

use std::{
    cell::RefCell,
    fmt::{self, Write as _},
    time::{SystemTime, UNIX_EPOCH},
};

use tower_impersonation::Timestamp;
use tracing::{
    Event, Level, Subscriber,
    field::Field,
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    field::Visit,
    layer::{Context, Layer},
    registry::{LookupSpan, SpanRef},
};

use super::{request_client::RequestSpan, thread_buffers::Lines};

/// The layer that formats events into lines and appends them to [`Lines`].
pub struct LineFormat {
    json: bool,
    lines: Lines,
}

impl LineFormat {
    /// Lines in JSON if `json`, else text, appended to `lines`.
    pub fn new(json: bool, lines: Lines) -> Self {
        Self { json, lines }
    }
}

/// A span's fields, formatted once, when the span is made (and when a field is recorded later).
struct SpanFields(String);

impl<S> Layer<S> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = String::new();
        attributes.record(&mut Visitor::new(&mut fields, self.json));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            let first = fields.is_empty();
            values.record(&mut Visitor {
                writer: fields,
                json: self.json,
                first,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        self.lines.append(|line| {
            write_line(
                line,
                self.json,
                metadata.level(),
                metadata.target(),
                // The request's client, then the spans the event is in.
                &(RequestSpan::current(), ctx.event_span(event)),
                |fields| event.record(fields),
            );
        });
    }
}

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

/// The span an event is in, and each span that one is in; none for `None`.
impl<R> LineSpans for Option<SpanRef<'_, R>>
where
    R: for<'a> LookupSpan<'a>,
{
    fn write_text(&self, line: &mut String) {
        if let Some(span) = self {
            text_spans(line, span);
        }
    }

    fn write_json(&self, line: &mut String, first: &mut bool) {
        if let Some(span) = self {
            json_spans(line, span, first);
        }
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

/// `span{fields}: ` for `span` and each span it is in, outermost first.
fn text_spans<R>(line: &mut String, span: &SpanRef<'_, R>)
where
    R: for<'a> LookupSpan<'a>,
{
    if let Some(parent) = span.parent() {
        text_spans(line, &parent);
    }
    line.push_str(span.name());
    if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>()
        && !fields.is_empty()
    {
        line.push('{');
        line.push_str(fields);
        line.push('}');
    }
    line.push_str(": ");
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

/// `{"name":"span",fields}` for `span` and each span it is in, outermost first.
fn json_spans<R>(line: &mut String, span: &SpanRef<'_, R>, first: &mut bool)
where
    R: for<'a> LookupSpan<'a>,
{
    if let Some(parent) = span.parent() {
        json_spans(line, &parent, first);
    }
    if !std::mem::replace(first, false) {
        line.push(',');
    }
    line.push_str("{\"name\":");
    let _ = write_json_str(line, span.name());
    if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>()
        && !fields.is_empty()
    {
        line.push(',');
        line.push_str(fields);
    }
    line.push('}');
}

/// Writes fields as `name=value` separated by spaces (strings quoted and escaped as `Debug`
/// does), or as the members of a JSON object.
pub struct Visitor<'a> {
    writer: &'a mut String,
    json: bool,
    first: bool,
}

impl<'a> Visitor<'a> {
    fn new(writer: &'a mut String, json: bool) -> Self {
        Self {
            writer,
            json,
            first: true,
        }
    }

    /// Fields that follow another, each written with its separator.
    pub fn after_first(writer: &'a mut String, json: bool) -> Self {
        Self {
            writer,
            json,
            first: false,
        }
    }

    /// Whether the fields are JSON members.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Fields a [`Visitor::after_first`] of the same format wrote, to follow a first field.
    pub fn rendered(&mut self, fields: &str) {
        debug_assert!(!self.first, "rendered fields follow a first one");
        self.writer.push_str(fields);
    }

    /// The field `name` with a string value.
    pub fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        if self.json {
            let _ = write_json_str(self.writer, value);
        } else if name == MESSAGE {
            let _ = LineEscaped(self.writer).write_str(value);
        } else if is_plain(value) {
            self.writer.push('"');
            self.writer.push_str(value);
            self.writer.push('"');
        } else {
            let _ = write!(self.writer, "{value:?}");
        }
    }

    /// The field `field` with a string value, as [`Visitor::str`] writes it.
    pub fn field(&mut self, field: &FieldName, value: &str) {
        if is_plain(value) {
            self.plain_field(field, value);
        } else {
            self.str(field.name, value);
        }
    }

    /// The field `field` with a value plain by construction (a name the crate gives, an HTTP
    /// method, a UUID): not scanned, and in three appends, the field's separator, name and
    /// opening quote in one, the value, the closing quote.
    pub fn plain_field(&mut self, field: &FieldName, value: &str) {
        debug_assert!(is_plain(value), "{value:?} is not plain");
        let before = if self.json { field.json } else { field.text };
        // The first field goes without the separator.
        let before = &before[usize::from(std::mem::replace(&mut self.first, false))..];
        self.writer.reserve(before.len() + value.len() + 1);
        self.writer.push_str(before);
        self.writer.push_str(value);
        self.writer.push('"');
    }

    /// The field `name` with a value written through `Debug` (`tracing`'s `?value`, and its
    /// `%value` through `Display`): bare in text, with its control characters escaped; a string
    /// in JSON.
    pub fn debug(&mut self, name: &str, value: &dyn fmt::Debug) {
        self.name(name);
        if self.json {
            self.writer.push('"');
            let _ = write!(JsonEscaped(self.writer), "{value:?}");
            self.writer.push('"');
        } else {
            let _ = write!(LineEscaped(self.writer), "{value:?}");
        }
    }

    /// The field `name` with a boolean, bare in text and JSON alike.
    pub fn bool(&mut self, name: &str, value: bool) {
        self.name(name);
        self.writer.push_str(if value { "true" } else { "false" });
    }

    /// The field `name` with a number.
    pub fn u64(&mut self, name: &str, value: u64) {
        self.name(name);
        let _ = write!(self.writer, "{value}");
    }

    /// The separator and the field's name, up to where its value goes. In text the message
    /// goes bare, with no name, as tracing-subscriber writes it.
    fn name(&mut self, name: &str) {
        let first = std::mem::replace(&mut self.first, false);
        if self.json {
            self.writer.push_str(if first { "\"" } else { ",\"" });
            self.writer.push_str(name);
            self.writer.push_str("\":");
        } else {
            if !first {
                self.writer.push(' ');
            }
            if name != MESSAGE {
                self.writer.push_str(name);
                self.writer.push('=');
            }
        }
    }
}

/// A field's name, with what goes before a plain string value of it made once: ` name="` in
/// text, `,"name":"` in JSON. Made by [`field_name!`]; never `message`, which text writes bare.
pub struct FieldName {
    name: &'static str,
    text: &'static str,
    json: &'static str,
}

/// The [`FieldName`] of a literal name: `field_name!("outcome")`.
macro_rules! field_name {
    ($name:literal) => {
        $crate::audit_log::line_format::FieldName::new(
            $name,
            concat!(" ", $name, "=\""),
            concat!(",\"", $name, "\":\""),
        )
    };
}
pub(crate) use field_name;

impl FieldName {
    /// Use [`field_name!`], which writes `text` and `json` from `name`.
    #[doc(hidden)]
    pub const fn new(name: &'static str, text: &'static str, json: &'static str) -> Self {
        Self { name, text, json }
    }
}

/// The field tracing names an event's message.
const MESSAGE: &str = "message";

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.str(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.u64(field.name(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field.name());
        let _ = write!(self.writer, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field.name());
        self.writer.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.debug(field.name(), value);
    }
}

/// Escapes control characters (`\n`, `\r`, `\t`, `\u{1b}`, ...) in what it is given, so no value
/// written bare in a text line can start a line of its own.
struct LineEscaped<'a, W>(&'a mut W);

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
/// quotes. One pass over every byte, without an early exit. (Sixteen bytes at a time with
/// vector instructions was no faster: audit values are 36 bytes and shorter.)
fn is_plain(text: &str) -> bool {
    text.bytes().fold(true, |plain, byte| {
        plain & (0x20..0x7f).contains(&byte) & (byte != b'"') & (byte != b'\\')
    })
}

/// `text` as a JSON string.
fn write_json_str(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    JsonEscaped(writer).write_str(text)?;
    writer.write_char('"')
}

/// Escapes what it is given as the inside of a JSON string.
struct JsonEscaped<'a, W>(&'a mut W);

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

thread_local! {
    /// The second last written on this thread, and its date and time: `2026-01-02T03:04:05.`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Now in RFC 3339, UTC, to the microsecond: `2026-01-02T03:04:05.000006Z`.
fn write_timestamp(line: &mut String) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, second)| {
        if *cached != secs {
            *cached = secs;
            second.clear();
            second.push_str(&date_and_time(secs));
        }
        line.push_str(second);
    });
    let micros = since_epoch.subsec_micros();
    for place in [100_000, 10_000, 1_000, 100, 10, 1] {
        line.push(char::from(b'0' + (micros / place % 10) as u8));
    }
    line.push('Z');
}

/// `secs` since the epoch as `2026-01-02T03:04:05.`, by the crate's calendar. Written once a
/// second per thread, so its cost does not matter.
fn date_and_time(secs: u64) -> String {
    let mut text = Timestamp::from_secs(secs).to_rfc3339_seconds();
    text.pop(); // the `Z`: the fraction of the second comes first
    text.push('.');
    text
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

    #[test]
    fn dates_and_times_read_as_rfc_3339() {
        // 2024-02-29T23:59:59, a leap day, and the epoch.
        assert_eq!(date_and_time(1_709_251_199), "2024-02-29T23:59:59.");
        assert_eq!(date_and_time(0), "1970-01-01T00:00:00.");
    }
}
