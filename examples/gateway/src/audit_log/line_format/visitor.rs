//! The fields of a line: [`Visitor`] writes each as `name=value` in text or as a JSON member,
//! for `tracing`'s events and for the lines written without one; [`FieldName`] makes what goes
//! before a plain value once, at compile time.

use std::fmt::{self, Write as _};

use tracing::field::Field;
use tracing_subscriber::field::Visit;

use super::escape::{JsonEscaped, LineEscaped, is_plain, write_json_str};

/// Writes fields as `name=value` separated by spaces (strings quoted and escaped as `Debug`
/// does), or as the members of a JSON object.
pub struct Visitor<'a> {
    writer: &'a mut String,
    json: bool,
    first: bool,
}

impl<'a> Visitor<'a> {
    /// Fields in a line or span of their own, the first without a separator.
    pub(super) fn new(writer: &'a mut String, json: bool) -> Self {
        Self {
            writer,
            json,
            first: true,
        }
    }

    /// Fields appended to those `writer` holds, the first without a separator if it holds none.
    pub(super) fn appending(writer: &'a mut String, json: bool) -> Self {
        let first = writer.is_empty();
        Self {
            writer,
            json,
            first,
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
