//! The evidence of a run as JSON, for machines, and the JSON Schema of that document
//! (`schemas/report.schema.json`, generated from the model's types and kept in sync by a test).

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use super::evidence::Evidence;

/// The report schema's identifier (`$id`), versioned with the document's `format`.
pub const SCHEMA_ID: &str = "urn:runbook:schema:report:v1";

/// The evidence as pretty JSON, ending with a newline.
pub fn render(evidence: &Evidence) -> String {
    // The model holds strings, numbers, maps and lists only: it always serializes.
    let mut text = serde_json::to_string_pretty(evidence).expect("the evidence serializes");
    text.push('\n');
    text
}

/// The JSON Schema of the report document: pretty JSON ending with a newline, keys sorted.
pub fn schema_json() -> String {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Evidence>();
    let mut value = schema.to_value();
    if let Value::Object(root) = &mut value {
        root.insert("$id".to_owned(), Value::String(SCHEMA_ID.to_owned()));
        root.insert(
            "title".to_owned(),
            Value::String("runbook report".to_owned()),
        );
    }
    let mut text =
        serde_json::to_string_pretty(&sorted(value)).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// The value with every object's keys in sorted order, at every depth.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(obj) => {
            let mut entries: Vec<(String, Value)> = obj.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
