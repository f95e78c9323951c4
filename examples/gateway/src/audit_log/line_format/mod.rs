//! The log's lines: a `tracing` layer ([`LineFormat`]) that writes each event as one line, text
//! or JSON, straight into the emitting thread's buffer, through the line and field writers
//! ([`write_line`], [`Visitor`]) that `decision_lines` shares. Every audited request pays for
//! it, so it writes no colours, makes no `Debug` round trip for plain strings and no copy of the
//! line.

mod escape;
mod line;
mod timestamp;
mod visitor;

use tracing::{
    Event, Subscriber,
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    layer::{Context, Layer},
    registry::{LookupSpan, SpanRef},
};

use super::{request_client::RequestSpan, thread_buffers::Lines};
pub(crate) use escape::is_plain;
use escape::write_json_str;
pub use line::{LineSpans, write_line};
pub(crate) use visitor::field_name;
pub use visitor::{FieldName, Visitor};

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
            values.record(&mut Visitor::appending(fields, self.json));
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
