//! The OpenAPI 3 document of the HTTP API, served at `/openapi.json`.

/// The document.
pub(crate) const DOCUMENT: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "plasma-operator", "version": "1", "description": "The child-chain operator's API. Errors are {\"error\": {\"code\", \"message\"}} with a stable code."},
  "components": {
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "Hex": {"type": "string", "pattern": "^0x[0-9a-fA-F]*$"},
      "Utxo": {"type": "object", "properties": {"utxoPos": {"type": "string"}, "owner": {"type": "string"}, "token": {"type": "string"}, "amount": {"type": "string"}}}
    }
  },
  "paths": {
    "/v1/transactions": {"post": {"summary": "Submit one signed transaction (abi.encode(SignedTransaction), hex)",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["tx"], "properties": {"tx": {"$ref": "#/components/schemas/Hex"}}}}}},
      "responses": {"200": {"description": "accepted", "content": {"application/json": {"schema": {"type": "object", "properties": {"txHash": {"type": "string"}}}}}},
                    "400": {"description": "malformed request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "413": {"description": "body too large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "422": {"description": "refused by a protocol rule (code names it)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "503": {"description": "storage failure or mempool full", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/transactions/batch": {"post": {"summary": "Submit many; one result per transaction, in order",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["txs"], "properties": {"txs": {"type": "array", "items": {"$ref": "#/components/schemas/Hex"}}}}}}},
      "responses": {"200": {"description": "per-transaction results", "content": {"application/json": {"schema": {"type": "object", "properties": {"results": {"type": "array", "items": {"type": "object"}}}}}}},
                    "400": {"description": "malformed request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "413": {"description": "too many transactions or body too large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/transactions/{hash}": {"get": {"summary": "A transaction's status; with its bytes, block, index and inclusion proof once included",
      "parameters": [{"name": "hash", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "status: pending | included | committed"}, "404": {"description": "unknown", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/blocks/{blknum}": {"get": {"summary": "A full block: root, L1 timestamp, transactions (signed for child blocks)",
      "parameters": [{"name": "blknum", "in": "path", "required": true, "schema": {"type": "integer"}}],
      "responses": {"200": {"description": "the block"}, "404": {"description": "unknown", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/utxos": {"get": {"summary": "Unspent outputs of an owner",
      "parameters": [{"name": "owner", "in": "query", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "the outputs", "content": {"application/json": {"schema": {"type": "object", "properties": {"utxos": {"type": "array", "items": {"$ref": "#/components/schemas/Utxo"}}}}}}}}}},
    "/v1/utxos/{utxoPos}/exit-data": {"get": {"summary": "Everything startStandardExit needs: tx bytes, inclusion proof, block timestamp",
      "parameters": [{"name": "utxoPos", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "exit data"}, "404": {"description": "not an unspent output"}, "409": {"description": "block not committed yet"}}}},
    "/v1/status": {"get": {"summary": "Heights, mempool size, L1 sync", "responses": {"200": {"description": "status"}}}},
    "/health": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (plasma_operator_*)", "responses": {"200": {"description": "text exposition format"}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}}
  }
}"##;

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_valid_json_and_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for route in [
            "/v1/transactions",
            "/v1/transactions/batch",
            "/v1/blocks/{blknum}",
            "/v1/utxos",
            "/health",
            "/metrics",
        ] {
            assert!(paths.contains_key(route), "{route} missing");
        }
    }
}
