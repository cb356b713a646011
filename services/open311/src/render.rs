//! One answer, two formats: a small tree of named values rendered as the
//! GeoReport v2 XML (`text/xml`, the format the specification requires) or
//! its JSON. The tree says what an element is; each format says how it
//! looks: an object is an element with children or a JSON object, a list is
//! repeated elements or a JSON array.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// The format a path's suffix asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    /// `services.xml` → (`services`, XML); `None` for any other suffix.
    pub fn split(file: &str) -> Option<(&str, Self)> {
        if let Some(stem) = file.strip_suffix(".xml") {
            Some((stem, Self::Xml))
        } else {
            file.strip_suffix(".json").map(|stem| (stem, Self::Json))
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Xml => "text/xml; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// A value of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Integer(i64),
    Bool(bool),
    /// Named children, in order.
    Object(Vec<(&'static str, Value)>),
    /// Items, each an element of this name in XML.
    List(&'static str, Vec<Value>),
    /// Nothing: an empty element, or `null`.
    Null,
}

impl Value {
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// Text, or nothing when it is empty.
    pub fn text_or_null(text: impl Into<String>) -> Self {
        let text = text.into();
        if text.is_empty() {
            Self::Null
        } else {
            Self::Text(text)
        }
    }
}

/// Renders `value` as the document `root` in `format`, with `status`.
pub fn answer(format: Format, status: StatusCode, root: &'static str, value: &Value) -> Response {
    let body = match format {
        Format::Xml => {
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
            element(&mut xml, root, value);
            xml
        }
        Format::Json => json(value).to_string(),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn element(xml: &mut String, name: &str, value: &Value) {
    match value {
        Value::Null => {
            xml.push('<');
            xml.push_str(name);
            xml.push_str("/>");
        }
        Value::List(item, items) => {
            open(xml, name);
            for each in items {
                element(xml, item, each);
            }
            close(xml, name);
        }
        Value::Object(children) => {
            open(xml, name);
            for (child, each) in children {
                element(xml, child, each);
            }
            close(xml, name);
        }
        scalar => {
            open(xml, name);
            escape_into(xml, &scalar_text(scalar));
            close(xml, name);
        }
    }
}

fn open(xml: &mut String, name: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
}

fn close(xml: &mut String, name: &str) {
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Integer(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => String::new(),
    }
}

/// XML text: the five markup characters escaped, and the characters XML 1.0
/// cannot carry at all (control characters but tab and line ends) left out.
fn escape_into(xml: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '"' => xml.push_str("&quot;"),
            '\'' => xml.push_str("&apos;"),
            '\t' | '\n' | '\r' => xml.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => xml.push(c),
        }
    }
}

fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Text(text) => serde_json::Value::String(text.clone()),
        Value::Number(number) => serde_json::json!(number),
        Value::Integer(number) => serde_json::json!(number),
        Value::Bool(flag) => serde_json::Value::Bool(*flag),
        Value::List(_, items) => serde_json::Value::Array(items.iter().map(json).collect()),
        Value::Object(children) => serde_json::Value::Object(
            children
                .iter()
                .map(|(name, child)| ((*name).to_string(), json(child)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_repeated_elements_in_xml_and_an_array_in_json() {
        let value = Value::List(
            "service",
            vec![Value::Object(vec![
                ("service_code", Value::text("illegal-parking")),
                ("metadata", Value::Bool(true)),
                ("keywords", Value::Null),
            ])],
        );
        let mut xml = String::new();
        element(&mut xml, "services", &value);
        assert_eq!(
            xml,
            "<services><service><service_code>illegal-parking</service_code>\
             <metadata>true</metadata><keywords/></service></services>"
        );
        assert_eq!(
            json(&value),
            serde_json::json!([{"service_code": "illegal-parking", "metadata": true, "keywords": null}])
        );
    }

    #[test]
    fn text_is_escaped_and_what_xml_cannot_carry_is_left_out() {
        let mut xml = String::new();
        element(&mut xml, "d", &Value::text("<b>\"Tom\" & 'Jerry'\u{7}</b>"));
        assert_eq!(
            xml,
            "<d>&lt;b&gt;&quot;Tom&quot; &amp; &apos;Jerry&apos;&lt;/b&gt;</d>"
        );
    }

    #[test]
    fn the_suffix_chooses_the_format() {
        assert_eq!(
            Format::split("services.xml"),
            Some(("services", Format::Xml))
        );
        assert_eq!(Format::split("SR-1.json"), Some(("SR-1", Format::Json)));
        assert_eq!(Format::split("services.html"), None);
    }
}
