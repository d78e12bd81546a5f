//! `assert:` — expressions that must hold; a failure shows the expression and every value in it.

use std::fmt::Write as _;

use minijinja::Value;

use crate::exec::render::error_text;
use crate::template;

/// Checks every expression; the error explains the first that does not hold.
pub fn check(exprs: &[String], ctx: &Value) -> Result<(), String> {
    for expr in exprs {
        let held = template::eval(expr, ctx)
            .map_err(|e| format!("cannot evaluate `{expr}`: {}", error_text(&e, ctx)))?;
        if !held.is_true() {
            return Err(format!(
                "assertion failed: {expr}{}",
                values_text(expr, ctx)
            ));
        }
    }
    Ok(())
}

/// The values of the names an expression reads, one `\n  name = value` line each (a failed
/// `assert`, `until` or `fail_when` shows them).
pub fn values_text(expr: &str, ctx: &Value) -> String {
    let mut text = String::new();
    for (name, value) in values_in(expr, ctx) {
        let _ = write!(text, "\n  {name} = {value}");
    }
    text
}

/// The value of each name an expression reads, for failure messages.
pub fn values_in(expr: &str, ctx: &Value) -> Vec<(String, String)> {
    if crate::limits::check(expr, true).is_err() {
        return Vec::new();
    }
    let Ok(compiled) = template::environment().compile_expression(expr) else {
        return Vec::new();
    };
    let mut names: Vec<String> = compiled.undeclared_variables(true).into_iter().collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| !template::GLOBALS.contains(&n.as_str()))
        .map(|name| {
            let shown = template::eval(&name, ctx).map_or_else(
                |_| "<undefined>".to_owned(),
                |v| serde_json::to_string(&v).unwrap_or_else(|_| v.to_string()),
            );
            (name, shown)
        })
        .collect()
}
