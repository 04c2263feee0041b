//! The manifest as written: `examples/<department>/zhongtai.toml`.
//!
//! ```toml
//! manifest-version = 1
//! department = "market-regulation"
//!
//! [components]
//! auth = { package = "zhongtai:auth", version = "^1.0", grants = ["authn.verify"] }
//!
//! [[services]]
//! name = "whoami"
//! method = "GET"
//! path = "/whoami"
//!
//! [[services.steps]]
//! name = "claims"
//! call = "auth.authn.verify"
//! args = { token = "request.headers['authorization']" }
//! errors = { malformed-token = 401, expired = 401 }
//!
//! [services.response]
//! status = 200
//! body = "steps.claims"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A department's manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Must be 1.
    pub manifest_version: Spanned<u32>,
    /// The department; its routes live under `/<department>/`.
    pub department: Spanned<String>,
    /// What the department is, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Capabilities used, by alias.
    #[serde(default)]
    pub components: BTreeMap<String, Spanned<ComponentRef>>,
    /// Record types request bodies may be declared as, by name: each a
    /// table of field names and their types (`id = "string"`,
    /// `tags = "list<string>"`, `note = "option<string>"`).
    #[serde(default)]
    pub types: BTreeMap<String, Spanned<Fields>>,
    /// HTTP services.
    #[serde(default)]
    pub services: Vec<Service>,
}

/// The fields of a record type as written, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table of field names and types, e.g. `id = \"string\"`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some((name, ty)) = map.next_entry::<String, String>()? {
                    fields.push((name, ty));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// A capability the department uses: a registry package, a semver range,
/// and the functions the department may call.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ComponentRef {
    /// `namespace:name`.
    pub package: String,
    /// A semver requirement by cargo's rules, e.g. `^1.0`.
    pub version: String,
    /// Functions granted, as `interface.function` or `interface.*`. Nothing
    /// else of the component may be called: deny by default.
    #[serde(default)]
    pub grants: Vec<String>,
}

/// One HTTP service: a route and the workflow behind it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// 1 to 64 lowercase letters, digits or `-`; the `service` of every
    /// call's context.
    pub name: Spanned<String>,
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: Spanned<String>,
    /// Starts with `/`; `{name}` segments are path parameters.
    pub path: Spanned<String>,
    /// The alias of the auth capability whose `authn.verify` checks the
    /// caller's bearer token before any step runs. A service states either
    /// this or `public = true`.
    #[serde(default)]
    pub authenticate: Option<Spanned<String>>,
    /// What the authenticated caller must be.
    #[serde(default)]
    pub require: Option<Spanned<Require>>,
    /// `true`: anyone may call the service, on purpose.
    #[serde(default)]
    pub public: Option<Spanned<bool>>,
    /// The type of the request body: a name under `[types]`, a type such
    /// as `list<string>`, or a type a component exports,
    /// `<alias>.<interface>.<type>`. The host checks every body against it
    /// before any step runs (400 naming the place), and the department's
    /// OpenAPI document describes it.
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    /// Run in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// A CEL expression naming who the request is for once a step has
    /// authenticated them, e.g. `steps.session.subject`. Each call after it
    /// yields a string carries that subject (in its context and its audit
    /// record).
    #[serde(default)]
    pub subject: Option<Spanned<String>>,
    /// What to answer when every step has run.
    pub response: Response,
}

/// What an authenticated caller must be, from the verified claims; every
/// listed condition must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Require {
    /// One of these kinds: `citizen`, `legal-entity`, `official`.
    #[serde(default)]
    pub kind: Vec<String>,
    /// An official of this department.
    #[serde(default)]
    pub department: Option<String>,
    /// Holding every one of these roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One step of a workflow: a capability call or a check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// 1 to 64 lowercase letters, digits or `_`, starting with a letter; its
    /// result is `steps.<name>` in later expressions.
    pub name: Spanned<String>,
    /// `alias.interface.function`.
    #[serde(default)]
    pub call: Option<Spanned<String>>,
    /// Arguments by parameter name, each a CEL expression.
    #[serde(default)]
    pub args: BTreeMap<String, Spanned<String>>,
    /// A CEL condition: the step runs only when it is true.
    #[serde(default, rename = "if")]
    pub condition: Option<Spanned<String>>,
    /// A CEL condition the request must meet; when false the request is
    /// refused with `status` and `message`.
    #[serde(default)]
    pub check: Option<Spanned<String>>,
    /// Status for a failed check (default 403).
    #[serde(default)]
    pub status: Option<u16>,
    /// Message for a failed check.
    #[serde(default)]
    pub message: Option<String>,
    /// HTTP status per error case of the call's result (default 422).
    #[serde(default)]
    pub errors: BTreeMap<String, u16>,
}

/// The answer of a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// HTTP status (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// A CEL expression for the JSON body.
    pub body: Spanned<String>,
}
