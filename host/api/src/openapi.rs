//! A department's OpenAPI 3.1 document, made from its manifest and the
//! types of its services' bodies at deploy, served (without
//! authentication: it says what the routes are, nothing of their data) at
//! `GET /<department>/openapi.json`.
//!
//! Each service is one operation: its path (path parameters as strings),
//! its method, its request body (the declared type as a JSON Schema, or
//! any JSON when none is declared), bearer security when it
//! authenticates, and every status it can answer — its own, the statuses
//! its checks and mapped error cases give, 422 for an unmapped error case,
//! 400 for a body or argument the service cannot take, 401 and 403 for an
//! authenticated service, 413 for a body over the limit, and 500, 503
//! and 504 for a failing guest, a busy or low host and a deadline — each
//! error with the error shape every refusal has; and the headers an answer
//! may carry (`x-request-id`, the receipt `zhongtai-audit-records`).

use std::collections::BTreeSet;

use serde_json::{Value as Json, json};
use zhongtai_manifest::{Action, Caller, Checked, WitType};

/// The path below a department where its document is served.
pub const PATH: &str = "/openapi.json";

/// What every refusal's body looks like.
fn error_schema() -> Json {
    json!({
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "step": {"type": "string"},
                },
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    })
}

/// The headers an answer of a service may carry.
fn answer_headers() -> Json {
    json!({
        "x-request-id": {
            "description": "The host's id of the request, which its audit records carry",
            "schema": {"type": "string"},
        },
        "zhongtai-audit-records": {
            "description": "The sequence numbers of the request's audit records, first-last (when it was recorded)",
            "schema": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
        },
    })
}

/// Why a status is answered, for people reading the document.
fn describe(status: u16) -> &'static str {
    match status {
        400 => {
            "The body, a path or query parameter, or a value computed from them is not what the service takes"
        }
        401 => "No bearer token, or one that does not verify",
        403 => "The caller is not who the service requires",
        404 => "Not found",
        409 => "Conflict",
        410 => "Gone",
        413 => "The body is larger than the host accepts",
        422 => "A capability refused the request (its error case is the code)",
        429 => "Too many attempts",
        500 => "A capability failed (trapped, ran out of memory) or the service is misconfigured",
        503 => {
            "The host is busy, low on storage, or cannot write the audit trail; try again (Retry-After)"
        }
        504 => "A capability did not finish before its deadline",
        _ => "Refused",
    }
}

/// The document of `manifest`, whose services (by index) take bodies of
/// `body_types`.
pub fn document(manifest: &Checked, body_types: &[Option<WitType>]) -> Json {
    let department = manifest.department.as_str();
    let mut paths = serde_json::Map::new();
    for (service, body) in manifest.services.iter().zip(body_types) {
        let parameters: Vec<Json> = service
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "schema": {"type": "string", "minLength": 1},
                })
            })
            .collect();
        let mut statuses = BTreeSet::from([400, 413, 500, 503, 504]);
        let authenticated = matches!(service.caller, Caller::Authenticated { .. });
        if authenticated {
            statuses.extend([401, 403]);
        }
        for step in &service.steps {
            match &step.action {
                Action::Check { status, .. } => {
                    statuses.insert(*status);
                }
                Action::Call(call) => {
                    statuses.insert(422);
                    statuses.extend(call.errors.values().copied());
                }
            }
        }
        statuses.remove(&service.status);
        let mut responses = serde_json::Map::new();
        responses.insert(
            service.status.to_string(),
            json!({
                "description": format!("The answer of {}", service.name),
                "headers": answer_headers(),
                "content": {"application/json": {"schema": {}}},
            }),
        );
        for status in statuses {
            responses.insert(
                status.to_string(),
                json!({
                    "description": describe(status),
                    "headers": answer_headers(),
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}},
                }),
            );
        }
        let mut operation = json!({
            "operationId": service.name.as_str(),
            "summary": format!("{} (service `{}`)", service.path, service.name),
            "parameters": parameters,
            "responses": responses,
            "security": if authenticated { json!([{"bearer": []}]) } else { json!([]) },
        });
        if service.method != "GET" && service.method != "DELETE" {
            operation["requestBody"] = match body {
                Some(ty) => json!({
                    "required": true,
                    "content": {"application/json": {"schema": ty.schema()}},
                }),
                None => json!({
                    "required": false,
                    "content": {"application/json": {"schema": {}}},
                }),
            };
        }
        let path = format!("/{department}{}", service.path);
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[service.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{department} (zhongtai)"),
            "version": "1",
            "description": format!("The services of {department}. Every refusal is a JSON object `{{\"error\": {{\"code\", \"message\", \"step\"}}}}`; every answer carries `x-request-id`, the id of its audit records."),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A session token from the department's authentication capability"},
            },
            "schemas": {"error": error_schema()},
        },
    })
}
