//! The OpenAPI 3 document of the HTTP API (`operator/openapi.json`), served at `/openapi.json`,
//! and the route table read from it: `405` answers list exactly its methods in `Allow`, and a path
//! number that is not one is a `400`, so the document is what the server answers
//! (`scripts/schemathesis` checks both against each other).

use plasma_spec::routes::RouteTable;
use std::sync::LazyLock;

/// The document.
pub(crate) const DOCUMENT: &str = include_str!("../openapi.json");

/// The routes of [`DOCUMENT`].
pub(crate) static ROUTES: LazyLock<RouteTable> = LazyLock::new(|| {
    // The document is a constant checked by the tests below: it always parses.
    RouteTable::from_openapi(DOCUMENT).unwrap_or_else(|e| panic!("operator/openapi.json: {e}"))
});

#[cfg(test)]
mod tests {
    use plasma_spec::routes::RouteMatch;
    use serde_json::Value;

    #[test]
    fn document_is_valid_json_and_lists_every_route() {
        let doc: Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for route in [
            "/v1/transactions",
            "/v1/transactions/batch",
            "/v1/transactions/{hash}",
            "/v1/blocks/{blknum}",
            "/v1/utxos",
            "/v1/inclusions",
            "/v1/utxos/{utxoPos}/exit-data",
            "/v1/blocks/{blknum}/availability",
            "/v1/status",
            "/health",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(route), "{route} missing");
        }
        // Every request body is closed (additionalProperties: false) and every operation that
        // takes input documents its 400 with the typed Error.
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let body = &op["requestBody"]["content"]["application/json"]["schema"];
                if !body.is_null() {
                    assert_eq!(body["additionalProperties"], false, "{method} {path}");
                }
                let takes_input = !body.is_null() || op["parameters"].is_array();
                if takes_input {
                    assert!(op["responses"]["400"].is_object(), "{method} {path}: no 400");
                }
            }
        }
        // The status body documents the L1 endpoints' health.
        let l1 = &doc["components"]["schemas"]["Status"]["properties"]["l1"]["properties"];
        assert!(l1["endpoints"].is_object());
    }

    #[test]
    fn the_route_table_answers_from_the_document() {
        let t = &*super::ROUTES;
        assert_eq!(t.find("GET", "/v1/blocks/1000"), RouteMatch::Route);
        assert!(matches!(t.find("GET", "/v1/blocks/abc"), RouteMatch::MalformedParameter { .. }));
        assert_eq!(
            t.find("DELETE", "/v1/transactions"),
            RouteMatch::MethodNotAllowed { allow: "POST".into() }
        );
        assert_eq!(t.find("GET", "/v2/anything"), RouteMatch::NoRoute);
    }
}
