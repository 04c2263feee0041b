//! CEL expressions in manifests: compiling them, and finding which earlier
//! steps and request parts they refer to.

use std::collections::BTreeSet;

/// A compiled CEL expression with its source.
#[derive(Debug)]
pub struct Expression {
    /// The text as written.
    pub source: String,
    /// The compiled program.
    pub program: cel::Program,
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
        Ok(Self {
            source: source.to_owned(),
            program,
        })
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
            .execute(&cel::Context::default())
            .ok()
            .and_then(|value| value.json().ok())
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
