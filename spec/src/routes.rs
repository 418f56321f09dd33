//! The route table of an OpenAPI document (spec: OP-6), for what a router alone cannot answer:
//! which methods a path allows (`405` with an `Allow` header that lists exactly the documented
//! methods) and which path parameter is malformed (`400`, not "no such route", for
//! `/v1/blocks/abc`). The operator and the watcher build theirs from the document they serve, so
//! the answers cannot drift from what `/openapi.json` says.

use serde_json::Value;

/// One segment of a documented path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Literal text.
    Literal(String),
    /// `{name}` whose schema is an integer: a decimal `u64`.
    Integer(String),
    /// `{name}` of any other schema.
    Text,
}

/// A documented path and its methods.
#[derive(Clone, Debug)]
struct Route {
    segments: Vec<Segment>,
    /// Upper case, in the document's order.
    methods: Vec<String>,
}

/// What the table says of a request the router did not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteMatch {
    /// No documented path has this shape: `404`.
    NoRoute,
    /// The path is documented, the method is not: `405` with `Allow: {allow}`.
    MethodNotAllowed {
        /// The documented methods of every path of this shape, comma separated.
        allow: String,
    },
    /// The path and method are documented but a path parameter is malformed: `400`.
    MalformedParameter {
        /// The parameter's name.
        name: String,
        /// The value sent.
        value: String,
    },
    /// A documented route: the router's own refusal stands.
    Route,
}

/// The answer to a request no route took, when the table has one: what both servers send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status: 400, 404 or 405.
    pub status: u16,
    /// The JSON error code.
    pub code: &'static str,
    /// The JSON error message.
    pub message: String,
    /// The `Allow` header's value (405 only).
    pub allow: Option<String>,
}

impl RouteMatch {
    /// The refusal to send; `None` for [`RouteMatch::Route`] (the router's own refusal stands).
    pub fn refusal(&self) -> Option<Refusal> {
        let refusal =
            |status, code, message: String, allow| Refusal { status, code, message, allow };
        match self {
            Self::NoRoute => Some(refusal(404, "NotFound", "no such route".into(), None)),
            Self::MethodNotAllowed { allow } => Some(refusal(
                405,
                "MethodNotAllowed",
                format!("method not allowed; this path takes {allow}"),
                Some(allow.clone()),
            )),
            Self::MalformedParameter { name, value } => Some(refusal(
                400,
                "MalformedParameter",
                format!("{name} is a decimal number from 0 to {}, got {value:?}", u64::MAX),
                None,
            )),
            Self::Route => None,
        }
    }
}

/// Why a document cannot give a table.
#[derive(Debug, thiserror::Error)]
pub enum RouteTableError {
    /// Not JSON.
    #[error("the OpenAPI document is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// No `paths` object.
    #[error("the OpenAPI document has no paths")]
    NoPaths,
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The routes of an OpenAPI 3 document.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Reads the `paths` of `document` (OpenAPI 3 JSON).
    pub fn from_openapi(document: &str) -> Result<Self, RouteTableError> {
        let doc: Value = serde_json::from_str(document)?;
        let paths = doc.get("paths").and_then(Value::as_object).ok_or(RouteTableError::NoPaths)?;
        let routes = paths
            .iter()
            .map(|(path, item)| {
                let methods: Vec<String> = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                // A parameter is an integer if the path item or any operation says so.
                let integer = |name: &str| {
                    let declared = |params: Option<&Value>| {
                        params.and_then(Value::as_array).is_some_and(|ps| {
                            ps.iter().map(|p| resolve(&doc, p)).any(|p| {
                                p["in"] == "path"
                                    && p["name"] == name
                                    && resolve(&doc, &p["schema"])["type"] == "integer"
                            })
                        })
                    };
                    declared(item.get("parameters"))
                        || METHODS
                            .iter()
                            .any(|m| declared(item.get(*m).and_then(|o| o.get("parameters"))))
                };
                let segments = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) if integer(name) => Segment::Integer(name.to_owned()),
                        Some(_) => Segment::Text,
                        None => Segment::Literal(s.to_owned()),
                    })
                    .collect();
                Route { segments, methods }
            })
            .collect();
        Ok(Self { routes })
    }

    /// What the table says of `method` on `path` (the URL path, percent-encoded as received).
    pub fn find(&self, method: &str, path: &str) -> RouteMatch {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let shaped: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| {
                r.segments.len() == parts.len()
                    && r.segments.iter().zip(&parts).all(|(s, p)| match s {
                        Segment::Literal(l) => l == p,
                        Segment::Integer(_) | Segment::Text => true,
                    })
            })
            .collect();
        // A literal segment outranks a parameter (`/v1/transactions/batch` is not a `{hash}`), as
        // in the routers: only the most literal routes of this shape count.
        let literals =
            |r: &Route| r.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
        let Some(most) = shaped.iter().map(|r| literals(r)).max() else {
            return RouteMatch::NoRoute;
        };
        let shaped: Vec<&Route> = shaped.into_iter().filter(|r| literals(r) == most).collect();
        let allowed: Vec<&Route> =
            shaped.iter().copied().filter(|r| r.methods.iter().any(|m| m == method)).collect();
        if allowed.is_empty() {
            let mut allow: Vec<&str> = Vec::new();
            for m in shaped.iter().flat_map(|r| &r.methods) {
                if !allow.contains(&m.as_str()) {
                    allow.push(m);
                }
            }
            return RouteMatch::MethodNotAllowed { allow: allow.join(", ") };
        }
        // The first malformed integer of a route that would otherwise take the request; none if
        // some route takes it as it is.
        let mut malformed = None;
        for r in &allowed {
            let bad = r.segments.iter().zip(&parts).find_map(|(s, p)| match s {
                Segment::Integer(name) if !is_decimal_u64(p) => Some((name, *p)),
                _ => None,
            });
            match bad {
                None => return RouteMatch::Route,
                Some(b) => {
                    malformed.get_or_insert(b);
                }
            }
        }
        malformed.map_or(RouteMatch::Route, |(name, value)| RouteMatch::MalformedParameter {
            name: name.clone(),
            value: value.to_owned(),
        })
    }
}

/// `value`, or what its local `$ref` (`#/components/…`) points at.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| doc.pointer(pointer))
        .unwrap_or(value)
}

/// Whether `s` is how the routers read a `u64`: decimal digits that fit.
fn is_decimal_u64(s: &str) -> bool {
    s.parse::<u64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"{"openapi": "3.0.3",
    "components": {"parameters": {"Blknum": {"name": "blknum", "in": "path", "schema": {"$ref": "#/components/schemas/Blknum"}}},
        "schemas": {"Blknum": {"type": "integer"}}},
    "paths": {
        "/v1/blocks/{blknum}": {"get": {"parameters": [{"$ref": "#/components/parameters/Blknum"}]}},
        "/v1/da/chunks/{blknum}": {"parameters": [{"name": "blknum", "in": "path", "schema": {"type": "integer"}}], "get": {}, "put": {}},
        "/v1/transactions": {"post": {}},
        "/v1/transactions/batch": {"post": {}},
        "/v1/transactions/{hash}": {"get": {"parameters": [{"name": "hash", "in": "path", "schema": {"type": "string"}}]}}
    }}"##;

    #[test]
    fn answers_allow_malformed_parameters_and_unknown_paths() {
        let t = RouteTable::from_openapi(DOC).unwrap();
        assert_eq!(t.find("GET", "/v1/blocks/1000"), RouteMatch::Route);
        assert_eq!(
            t.find("GET", "/v1/blocks/abc"),
            RouteMatch::MalformedParameter { name: "blknum".into(), value: "abc".into() }
        );
        // Past u64 is malformed too (the routers read u64).
        assert!(matches!(
            t.find("GET", "/v1/blocks/18446744073709551616"),
            RouteMatch::MalformedParameter { .. }
        ));
        assert_eq!(
            t.find("TRACE", "/v1/da/chunks/7"),
            RouteMatch::MethodNotAllowed { allow: "GET, PUT".into() }
        );
        // The method is checked before the parameter.
        assert_eq!(
            t.find("DELETE", "/v1/blocks/abc"),
            RouteMatch::MethodNotAllowed { allow: "GET".into() }
        );
        // A literal path outranks a parameter path of the same shape.
        assert_eq!(
            t.find("PUT", "/v1/transactions/batch"),
            RouteMatch::MethodNotAllowed { allow: "POST".into() }
        );
        assert_eq!(t.find("GET", "/v1/transactions/0x12"), RouteMatch::Route);
        assert_eq!(t.find("GET", "/v1/nothing"), RouteMatch::NoRoute);
        assert_eq!(t.find("GET", "/v1/blocks/1/extra"), RouteMatch::NoRoute);
        assert!(matches!(RouteTable::from_openapi("{}"), Err(RouteTableError::NoPaths)));
        let r = t.find("PATCH", "/v1/blocks/1").refusal().unwrap();
        assert_eq!((r.status, r.code, r.allow.as_deref()), (405, "MethodNotAllowed", Some("GET")));
        let r = t.find("GET", "/v1/blocks/x").refusal().unwrap();
        assert_eq!((r.status, r.code), (400, "MalformedParameter"));
        assert_eq!(t.find("GET", "/nothing").refusal().unwrap().status, 404);
        assert_eq!(t.find("GET", "/v1/blocks/1").refusal(), None);
    }
}
