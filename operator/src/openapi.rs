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
      "Inclusion": {"type": "object", "description": "either the proof fields or error {code: UnknownBlock | TxIndexOutOfRange | BlockWithheld | StorageFailure, message}", "properties": {"blknum": {"type": "integer"}, "txIndex": {"type": "integer"}, "signedTx": {"type": "string", "nullable": true, "description": "child blocks only"}, "txBytes": {"$ref": "#/components/schemas/Hex"}, "proof": {"$ref": "#/components/schemas/Hex"}, "root": {"type": "string"}, "blockTimestamp": {"type": "integer", "nullable": true}, "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "DaHeader": {"type": "object", "description": "EIP-712 DaHeader(uint64 blknum,bytes32 txRoot,uint64 dataLen,uint16 k,uint16 n,bytes32 chunkRoot) under the plasma signing domain (DA-4)", "required": ["blknum", "txRoot", "dataLen", "k", "n", "chunkRoot"], "properties": {"blknum": {"type": "integer"}, "txRoot": {"type": "string", "description": "the block's Merkle root, as committed on L1"}, "dataLen": {"type": "integer", "description": "bytes of the block's wire form"}, "k": {"type": "integer"}, "n": {"type": "integer"}, "chunkRoot": {"type": "string"}}},
      "Availability": {"type": "object", "required": ["header", "headerSignature", "receipts"], "properties": {
        "header": {"$ref": "#/components/schemas/DaHeader"},
        "headerSignature": {"$ref": "#/components/schemas/Hex", "description": "the operator's 65-byte signature of the header"},
        "receipts": {"type": "array", "description": "receipts that count: each signed by the tower configured at its index, for this block, chunk root and index (EIP-712 DaReceipt(uint64 blknum,bytes32 chunkRoot,uint16 index))", "items": {"type": "object", "required": ["index", "tower", "signature"], "properties": {"index": {"type": "integer"}, "tower": {"type": "string"}, "signature": {"$ref": "#/components/schemas/Hex"}}}}}},
      "DaStatus": {"type": "object", "nullable": true, "description": "null without [da]", "properties": {
        "k": {"type": "integer"}, "n": {"type": "integer"},
        "quorumMissed": {"type": "integer", "description": "blocks committed without k receipts after wait_ms (liveness: towers get no veto)"},
        "towers": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "url": {"type": "string"}, "address": {"type": "string"}, "lastError": {"type": "string", "nullable": true, "description": "the last push's failure; null after a receipt"}, "behind": {"type": "integer", "description": "blocks still being pushed to this tower (no receipt yet)"}}}}}}
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
      "responses": {"200": {"description": "status: pending | included | committed"}, "404": {"description": "UnknownTransaction, or BlockWithheld (devnet fault: its block is not served; ask the towers)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/blocks/{blknum}": {"get": {"summary": "A full block. With Accept: application/vnd.plasma.block: the stored wire form (OP-9; header with root, count and lengths, then zlib frames of the signed transactions), streamed, with single byte ranges. Otherwise JSON, for blocks of at most 4,096 transactions.",
      "parameters": [{"name": "blknum", "in": "path", "required": true, "schema": {"type": "integer"}},
                     {"name": "Accept", "in": "header", "required": false, "schema": {"type": "string", "enum": ["application/vnd.plasma.block", "application/json"]}},
                     {"name": "Range", "in": "header", "required": false, "description": "bytes=<from>-[<to>] or bytes=-<suffix>; one range", "schema": {"type": "string"}}],
      "responses": {"200": {"description": "the block; in the wire form with headers Content-Length, Accept-Ranges: bytes, X-Plasma-Root, X-Plasma-Tx-Count and, once committed, X-Plasma-L1-Timestamp",
                            "content": {"application/vnd.plasma.block": {"schema": {"type": "string", "format": "binary"}},
                                        "application/json": {"schema": {"$ref": "#/components/schemas/Block"}}}},
                    "206": {"description": "the asked range of the wire form, with Content-Range", "content": {"application/vnd.plasma.block": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": {"description": "UnknownBlock, or BlockWithheld (devnet fault [faults] withhold: distributed and committed, never served; ask the towers)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "413": {"description": "BlockTooLargeForJson: more than 4,096 transactions; ask with Accept: application/vnd.plasma.block", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "416": {"description": "RangeNotSatisfiable, with Content-Range: bytes */<length>", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/utxos": {"get": {"summary": "Unspent outputs of an owner, one page in ascending position; follow next",
      "parameters": [{"name": "owner", "in": "query", "required": true, "schema": {"type": "string"}},
                     {"name": "limit", "in": "query", "required": false, "description": "1 to 10,000 (1 to 1,000 with proofs); default 1,000", "schema": {"type": "integer"}},
                     {"name": "after", "in": "query", "required": false, "description": "exclusive cursor: the previous page's next", "schema": {"type": "string"}},
                     {"name": "proofs", "in": "query", "required": false, "description": "true: each entry carries exitData (null until its block is committed)", "schema": {"type": "boolean"}}],
      "responses": {"200": {"description": "one page", "content": {"application/json": {"schema": {"type": "object", "required": ["utxos", "next"], "properties": {"utxos": {"type": "array", "items": {"$ref": "#/components/schemas/Utxo"}}, "next": {"type": "string", "nullable": true}}}}}},
                    "400": {"description": "MalformedQuery (unknown or repeated key, proofs not true/false), MalformedAddress, MalformedPosition (after), BadLimit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "404": {"description": "BlockWithheld: with proofs=true, the page holds an output of a withheld block (devnet fault)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/inclusions": {"post": {"summary": "Batch inclusion proofs from the index (OP-9): at most 1,000 positions, answered in request order, each with its own error",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["txs"], "properties": {"txs": {"type": "array", "maxItems": 1000, "items": {"type": "object", "required": ["blknum", "txIndex"], "properties": {"blknum": {"type": "integer"}, "txIndex": {"type": "integer"}}}}}}}}},
      "responses": {"200": {"description": "one item per position", "content": {"application/json": {"schema": {"type": "object", "properties": {"inclusions": {"type": "array", "items": {"$ref": "#/components/schemas/Inclusion"}}}}}}},
                    "400": {"description": "MalformedJson", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "413": {"description": "BatchTooLarge (more than 1,000) or BodyTooLarge", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/utxos/{utxoPos}/exit-data": {"get": {"summary": "Everything startStandardExit needs: tx bytes, inclusion proof, block timestamp",
      "parameters": [{"name": "utxoPos", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "exit data, from the index", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExitData"}}}}, "404": {"description": "UnknownUtxo, or BlockWithheld (devnet fault)"}, "409": {"description": "NotCommitted: block not committed yet"}}}},
    "/v1/blocks/{blknum}/availability": {"get": {"summary": "The block's availability record (DA): the header the operator signed for its chunks and the towers' receipts stored for it. Deposit blocks are not distributed (their data is on L1).",
      "parameters": [{"name": "blknum", "in": "path", "required": true, "schema": {"type": "integer"}}],
      "responses": {"200": {"description": "header, its signature and the receipts", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Availability"}}}},
                    "404": {"description": "NoAvailability: no header for the block (a deposit block, no [da] configured, or not encoded yet)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/status": {"get": {"summary": "Heights, mempool size, L1 sync, availability distribution",
      "responses": {"200": {"description": "status", "content": {"application/json": {"schema": {"type": "object", "properties": {"chain": {"type": "object"}, "l1": {"type": "object"}, "da": {"$ref": "#/components/schemas/DaStatus"}}}}}}}}},
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
            "/v1/blocks/{blknum}/availability",
            "/v1/status",
            "/health",
            "/metrics",
        ] {
            assert!(paths.contains_key(route), "{route} missing");
        }
    }
}
