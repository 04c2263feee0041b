//! CEL expressions in manifests: compiling them, and finding which earlier
//! steps and request parts they refer to.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// A fresh context to evaluate expressions in: the CEL standard library,
/// built once per process and shared (building it is most of the cost of
/// evaluating a small expression), and no variables yet.
pub fn context() -> cel::Context<'static, 'static> {
    static STDLIB: OnceLock<Arc<cel::Env>> = OnceLock::new();
    cel::Context::with_env(STDLIB.get_or_init(|| Arc::new(cel::Env::stdlib())).clone())
}

/// A compiled CEL expression with its source.
#[derive(Debug)]
pub struct Expression {
    /// The text as written.
    pub source: String,
    /// The compiled program.
    pub program: cel::Program,
    /// When the expression is a plain path — a variable and field names,
    /// `request.body.id`, `steps.subject` — its names in order.
    path: Option<Vec<String>>,
}

impl Clone for Expression {
    fn clone(&self) -> Self {
        Self::compile(&self.source).expect("compiled once already")
    }
}

impl Expression {
    /// Compiles `source`; the error says what the parser found.
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = cel::Program::compile(source)
            .map_err(|e| format!("not a valid CEL expression: {e}"))?;
        let path = field_path(program.expression());
        Ok(Self {
            source: source.to_owned(),
            program,
            path,
        })
    }

    /// The names of a plain path expression (`request.body.id` →
    /// `request`, `body`, `id`), which can be read from JSON directly
    /// rather than evaluated; `None` for any other expression.
    pub fn path(&self) -> Option<&[String]> {
        self.path.as_deref()
    }

    /// The variables it uses at the top level (`request`, `steps`).
    pub fn variables(&self) -> BTreeSet<String> {
        self.program
            .references()
            .variables()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The steps it reads: `steps.name` and `steps['name']`.
    pub fn step_references(&self) -> BTreeSet<String> {
        member_references(&self.source, "steps")
    }

    /// The parts of `request.body` it reads: named top-level fields
    /// (`request.body.name`, `request.body['name']`, `has(...)` of one),
    /// or the whole body when it uses `request.body` or `request` any
    /// other way.
    pub fn body_fields(&self) -> BodyFields {
        let mut fields = BodyFields::default();
        body_reads(self.program.expression(), &mut fields);
        fields
    }

    /// Whether it reads nothing but literals.
    pub fn is_literal(&self) -> bool {
        self.variables().is_empty()
    }

    /// The JSON value of a literal expression (one that reads no variable),
    /// for checks at deploy; `None` for any other, or one that fails.
    pub fn literal_value(&self) -> Option<serde_json::Value> {
        if !self.is_literal() {
            return None;
        }
        self.program
            .execute(&context())
            .ok()
            .and_then(|value| value.json().ok())
    }
}

/// What of a request body some expressions read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BodyFields {
    /// These top-level fields, and nothing else (none when empty).
    Named(BTreeSet<String>),
    /// Nothing of it.
    #[default]
    Nothing,
    /// The whole body.
    All,
}

impl BodyFields {
    /// What both read.
    pub fn merge(&mut self, other: BodyFields) {
        *self = match (std::mem::take(self), other) {
            (BodyFields::All, _) | (_, BodyFields::All) => BodyFields::All,
            (BodyFields::Nothing, other) | (other, BodyFields::Nothing) => other,
            (BodyFields::Named(mut mine), BodyFields::Named(theirs)) => {
                mine.extend(theirs);
                BodyFields::Named(mine)
            }
        };
    }

    fn name(&mut self, field: &str) {
        match self {
            BodyFields::All => {}
            BodyFields::Nothing => {
                *self = BodyFields::Named(BTreeSet::from([field.to_owned()]));
            }
            BodyFields::Named(fields) => {
                fields.insert(field.to_owned());
            }
        }
    }
}

/// The names of `expr` when it is a variable followed by field selections
/// (no `has()`, no index, no call).
fn field_path(expr: &cel::IdedExpr) -> Option<Vec<String>> {
    use cel::common::ast::Expr;
    match &expr.expr {
        Expr::Ident(name) => Some(vec![name.clone()]),
        Expr::Select(select) if !select.test => {
            let mut path = field_path(&select.operand)?;
            path.push(select.field.clone());
            Some(path)
        }
        _ => None,
    }
}

/// Whether `expr` is `request.body` itself.
fn is_request_body(expr: &cel::IdedExpr) -> bool {
    use cel::common::ast::Expr;
    matches!(&expr.expr, Expr::Select(select)
        if !select.test
            && select.field == "body"
            && matches!(&select.operand.expr, Expr::Ident(name) if name == "request"))
}

/// Adds what `expr` reads of `request.body` to `fields`.
fn body_reads(expr: &cel::IdedExpr, fields: &mut BodyFields) {
    use cel::common::ast::{EntryExpr, Expr, LiteralValue, operators};
    if is_request_body(expr) {
        fields.merge(BodyFields::All);
        return;
    }
    match &expr.expr {
        Expr::Ident(name) if name == "request" => fields.merge(BodyFields::All),
        Expr::Select(select) if is_request_body(&select.operand) => fields.name(&select.field),
        Expr::Select(select) => {
            if !matches!(&select.operand.expr, Expr::Ident(name) if name == "request") {
                body_reads(&select.operand, fields);
            }
        }
        Expr::Call(call) => {
            if call.func_name == operators::INDEX
                && let [target, key] = call.args.as_slice()
                && is_request_body(target)
                && let Expr::Literal(LiteralValue::String(key)) = &key.expr
            {
                fields.name(key);
                return;
            }
            if let Some(target) = &call.target {
                body_reads(target, fields);
            }
            for arg in &call.args {
                body_reads(arg, fields);
            }
        }
        Expr::Comprehension(comprehension) => {
            for part in [
                &comprehension.iter_range,
                &comprehension.accu_init,
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ] {
                body_reads(part, fields);
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|e| body_reads(e, fields)),
        Expr::Map(map) => map.entries.iter().for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => {
                body_reads(&entry.key, fields);
                body_reads(&entry.value, fields);
            }
            EntryExpr::StructField(field) => body_reads(&field.value, fields),
        }),
        Expr::Struct(object) => object.entries.iter().for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => {
                body_reads(&entry.key, fields);
                body_reads(&entry.value, fields);
            }
            EntryExpr::StructField(field) => body_reads(&field.value, fields),
        }),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Names accessed on `root` in `source`, outside string literals.
fn member_references(source: &str, root: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if source[i..].starts_with(root)
                && (i == 0
                    || !(bytes[i - 1].is_ascii_alphanumeric()
                        || bytes[i - 1] == b'_'
                        || bytes[i - 1] == b'.')) =>
            {
                let rest = &source[i + root.len()..];
                if let Some(after_dot) = rest.strip_prefix('.') {
                    let name: String = after_dot
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.insert(name);
                    }
                } else if let Some(after_bracket) = rest.strip_prefix('[') {
                    let trimmed = after_bracket.trim_start();
                    if let Some(q) = trimmed.chars().next().filter(|c| *c == '\'' || *c == '"') {
                        let name: String = trimmed[1..].chars().take_while(|c| *c != q).collect();
                        found.insert(name);
                    }
                }
                i += root.len();
                continue;
            }
            None => {}
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(source: &str) -> BodyFields {
        Expression::compile(source).unwrap().body_fields()
    }

    fn named(names: &[&str]) -> BodyFields {
        BodyFields::Named(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn the_body_fields_an_expression_reads_are_found_in_its_syntax() {
        assert_eq!(reads("request.path.id"), BodyFields::Nothing);
        assert_eq!(reads("request.body.scope"), named(&["scope"]));
        assert_eq!(
            reads("size(request.body['business-scope']) > 0 && has(request.body.x)"),
            named(&["business-scope", "x"])
        );
        assert_eq!(
            reads("{'a': request.body.a, 'b': [request.body.b.c]}"),
            named(&["a", "b"])
        );
        assert_eq!(reads("request.body"), BodyFields::All);
        assert_eq!(reads("request.body[request.query.k]"), BodyFields::All);
        assert_eq!(reads("request"), BodyFields::All);
        assert_eq!(reads("request.body.items.all(i, i > 0)"), named(&["items"]));
        assert_eq!(reads("'request.body.x'"), BodyFields::Nothing);
        let mut merged = named(&["a"]);
        merged.merge(named(&["b"]));
        merged.merge(BodyFields::Nothing);
        assert_eq!(merged, named(&["a", "b"]));
        merged.merge(BodyFields::All);
        assert_eq!(merged, BodyFields::All);
    }

    #[test]
    fn plain_paths_are_recognised_and_nothing_else() {
        let path = |source: &str| {
            Expression::compile(source)
                .unwrap()
                .path()
                .map(|names| names.join("/"))
        };
        assert_eq!(path("request.body.id").as_deref(), Some("request/body/id"));
        assert_eq!(path("steps.subject").as_deref(), Some("steps/subject"));
        assert_eq!(path("request").as_deref(), Some("request"));
        for other in [
            "request.body['id']",
            "has(request.body.id)",
            "request.body.id + 'x'",
            "size(request.body)",
            "'request.body'",
            "steps.fee.amount > 0",
            "request.body.ids[0]",
        ] {
            assert_eq!(path(other), None, "{other}");
        }
    }

    #[test]
    fn step_references_are_found_outside_strings() {
        let e = Expression::compile(
            r#"steps.claims['subject-id'] + steps["fee"].id + 'steps.nope' + mysteps.x"#,
        )
        .unwrap();
        assert_eq!(
            e.step_references().into_iter().collect::<Vec<_>>(),
            ["claims", "fee"]
        );
        assert!(Expression::compile("'x'").unwrap().is_literal());
        assert!(!Expression::compile("request.body").unwrap().is_literal());
        assert!(Expression::compile("steps.").is_err());
    }
}
