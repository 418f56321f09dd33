//! The OpenAPI 3 document of the HTTP API, served at `/openapi.json`.

/// The document.
pub(crate) const DOCUMENT: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "plasma-operator", "version": "1", "description": "The child-chain operator's API. Errors are {\"error\": {\"code\", \"message\"}} with a stable code."},
  "components": {
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "Hex": {"type": "string", "pattern": "^0x[0-9a-fA-F]*$"},
      "Utxo": {"type": "object", "properties": {"utxoPos": {"type": "string"}, "owner": {"type": "string"}, "token": {"type": "string"}, "amount": {"type": "string"}, "exitData": {"allOf": [{"$ref": "#/components/schemas/ExitData"}], "nullable": true}}},
      "ExitData": {"type": "object", "properties": {"utxoPos": {"type": "string"}, "blknum": {"type": "integer"}, "txBytes": {"$ref": "#/components/schemas/Hex"}, "inclusionProof": {"$ref": "#/components/schemas/Hex"}, "root": {"type": "string"}, "blockTimestamp": {"type": "integer"}}},
      "Block": {"type": "object", "properties": {"blknum": {"type": "integer"}, "root": {"type": "string"}, "l1Timestamp": {"type": "integer", "nullable": true}, "l1Tx": {"type": "string", "nullable": true}, "txs": {"type": "array", "items": {"$ref": "#/components/schemas/Hex"}}}},
      "Inclusion": {"type": "object", "description": "either the proof fields or error {code: UnknownBlock | TxIndexOutOfRange | StorageFailure, message}", "properties": {"blknum": {"type": "integer"}, "txIndex": {"type": "integer"}, "signedTx": {"type": "string", "nullable": true, "description": "child blocks only"}, "txBytes": {"$ref": "#/components/schemas/Hex"}, "proof": {"$ref": "#/components/schemas/Hex"}, "root": {"type": "string"}, "blockTimestamp": {"type": "integer", "nullable": true}, "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
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
    "/v1/blocks/{blknum}": {"get": {"summary": "A full block. With Accept: application/vnd.plasma.block: the stored wire form (OP-9; header with root, count and lengths, then zlib frames of the signed transactions), streamed, with single byte ranges. Otherwise JSON, for blocks of at most 4,096 transactions.",
      "parameters": [{"name": "blknum", "in": "path", "required": true, "schema": {"type": "integer"}},
                     {"name": "Accept", "in": "header", "required": false, "schema": {"type": "string", "enum": ["application/vnd.plasma.block", "application/json"]}},
                     {"name": "Range", "in": "header", "required": false, "description": "bytes=<from>-[<to>] or bytes=-<suffix>; one range", "schema": {"type": "string"}}],
      "responses": {"200": {"description": "the block; in the wire form with headers Content-Length, Accept-Ranges: bytes, X-Plasma-Root, X-Plasma-Tx-Count and, once committed, X-Plasma-L1-Timestamp",
                            "content": {"application/vnd.plasma.block": {"schema": {"type": "string", "format": "binary"}},
                                        "application/json": {"schema": {"$ref": "#/components/schemas/Block"}}}},
                    "206": {"description": "the asked range of the wire form, with Content-Range", "content": {"application/vnd.plasma.block": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": {"description": "UnknownBlock", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "413": {"description": "BlockTooLargeForJson: more than 4,096 transactions; ask with Accept: application/vnd.plasma.block", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "416": {"description": "RangeNotSatisfiable, with Content-Range: bytes */<length>", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/utxos": {"get": {"summary": "Unspent outputs of an owner, one page in ascending position; follow next",
      "parameters": [{"name": "owner", "in": "query", "required": true, "schema": {"type": "string"}},
                     {"name": "limit", "in": "query", "required": false, "description": "1 to 10,000 (1 to 1,000 with proofs); default 1,000", "schema": {"type": "integer"}},
                     {"name": "after", "in": "query", "required": false, "description": "exclusive cursor: the previous page's next", "schema": {"type": "string"}},
                     {"name": "proofs", "in": "query", "required": false, "description": "true: each entry carries exitData (null until its block is committed)", "schema": {"type": "boolean"}}],
      "responses": {"200": {"description": "one page", "content": {"application/json": {"schema": {"type": "object", "required": ["utxos", "next"], "properties": {"utxos": {"type": "array", "items": {"$ref": "#/components/schemas/Utxo"}}, "next": {"type": "string", "nullable": true}}}}}},
                    "400": {"description": "MalformedQuery (unknown or repeated key, proofs not true/false), MalformedAddress, MalformedPosition (after), BadLimit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/inclusions": {"post": {"summary": "Batch inclusion proofs from the index (OP-9): at most 1,000 positions, answered in request order, each with its own error",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["txs"], "properties": {"txs": {"type": "array", "maxItems": 1000, "items": {"type": "object", "required": ["blknum", "txIndex"], "properties": {"blknum": {"type": "integer"}, "txIndex": {"type": "integer"}}}}}}}}},
      "responses": {"200": {"description": "one item per position", "content": {"application/json": {"schema": {"type": "object", "properties": {"inclusions": {"type": "array", "items": {"$ref": "#/components/schemas/Inclusion"}}}}}}},
                    "400": {"description": "MalformedJson", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "413": {"description": "BatchTooLarge (more than 1,000) or BodyTooLarge", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/utxos/{utxoPos}/exit-data": {"get": {"summary": "Everything startStandardExit needs: tx bytes, inclusion proof, block timestamp",
      "parameters": [{"name": "utxoPos", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "exit data, from the index", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExitData"}}}}, "404": {"description": "UnknownUtxo"}, "409": {"description": "NotCommitted: block not committed yet"}}}},
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
            "/v1/inclusions",
            "/v1/utxos/{utxoPos}/exit-data",
            "/health",
            "/metrics",
        ] {
            assert!(paths.contains_key(route), "{route} missing");
        }
    }
}
