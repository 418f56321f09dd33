// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {UtxoPosLib} from "./UtxoPosLib.sol";

/// @title PlasmaTx
/// @notice Child-chain transactions: strict decoding, the stateless rules, hashes and output ids
/// (spec: ENC, TX, OUT).
/// @dev A canonical encoding is fully determined by the input and output counts, so strictness
/// is a layout check word by word before `abi.decode`, which then cannot fail. That is cheaper
/// than re-encoding and comparing, and every rejection gets its own error.
library PlasmaTx {
    uint8 internal constant TYPE_PAYMENT = 1;
    uint8 internal constant TYPE_DEPOSIT = 2;
    uint8 internal constant TYPE_FEE = 3;
    uint256 internal constant MAX_INPUTS = 5;
    uint256 internal constant MAX_OUTPUTS = 5;
    /// @dev 32 * (1 + 4 + (1 + 5) + (1 + 3 * 5)) (spec: ENC-3).
    uint256 internal constant MAX_TX_BYTES = 864;

    struct Output {
        address owner;
        address token;
        uint256 amount;
    }

    struct Transaction {
        uint8 txType;
        uint256[] inputs;
        Output[] outputs;
        bytes32 metadata;
    }

    /// @notice Longer than any valid transaction (spec: ENC-3).
    error PlasmaTxTooLarge(uint256 length);
    /// @notice Not the canonical ABI encoding of a transaction (spec: ENC-2); `word` is the index
    /// of the first 32-byte word that is wrong (or the length in words for a length mismatch).
    error PlasmaTxNonCanonical(uint256 word);
    /// @notice spec: TX-1.
    error PlasmaTxUnknownType(uint8 txType);
    /// @notice spec: TX-2.
    error PlasmaTxWrongInputCount(uint8 txType, uint256 count);
    /// @notice spec: TX-2.
    error PlasmaTxWrongOutputCount(uint8 txType, uint256 count);
    /// @notice spec: TX-3.
    error PlasmaTxDuplicateInput(uint256 utxoPos);
    /// @notice spec: TX-3.
    error PlasmaTxInvalidPosition(uint256 inputIndex, uint256 utxoPos);
    /// @notice spec: TX-4.
    error PlasmaTxZeroAmount(uint256 outputIndex);
    /// @notice spec: TX-4.
    error PlasmaTxZeroOwner(uint256 outputIndex);
    /// @notice spec: TX-5.
    error PlasmaTxAmountOverflow(address token);

    function _word(bytes memory data, uint256 index) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := mload(add(add(data, 32), mul(index, 32)))
        }
    }

    /// @notice Checks that `txBytes` is exactly the canonical `abi.encode(tx)` of some transaction
    /// (spec: ENC-2, ENC-3) and returns its input and output counts.
    function checkLayout(bytes memory txBytes) internal pure returns (uint256 nIn, uint256 nOut) {
        uint256 len = txBytes.length;
        if (len > MAX_TX_BYTES) revert PlasmaTxTooLarge(len);
        // Smallest: offset, 4 head words, two empty array lengths.
        if (len < 32 * 7 || len % 32 != 0) revert PlasmaTxNonCanonical(len / 32);
        if (_word(txBytes, 0) != 0x20) revert PlasmaTxNonCanonical(0);
        if (_word(txBytes, 1) > type(uint8).max) revert PlasmaTxNonCanonical(1);
        if (_word(txBytes, 2) != 0x80) revert PlasmaTxNonCanonical(2);
        // Counts are bounded by the byte length before any arithmetic uses them, so nothing
        // below can overflow. Counts beyond the limits still decode; `check` names them.
        uint256 words = len / 32;
        nIn = _word(txBytes, 5);
        if (nIn > words - 7) revert PlasmaTxNonCanonical(5);
        if (_word(txBytes, 3) != 0x80 + 32 * (1 + nIn)) revert PlasmaTxNonCanonical(3);
        nOut = _word(txBytes, 6 + nIn);
        if (nOut > (words - 7 - nIn) / 3 || words != 7 + nIn + 3 * nOut) revert PlasmaTxNonCanonical(6 + nIn);
        for (uint256 i = 0; i < nOut; ++i) {
            uint256 at = 7 + nIn + 3 * i;
            if (_word(txBytes, at) > type(uint160).max) revert PlasmaTxNonCanonical(at);
            if (_word(txBytes, at + 1) > type(uint160).max) revert PlasmaTxNonCanonical(at + 1);
        }
    }

    /// @notice Strictly decodes a transaction (spec: ENC-2, ENC-3). Stateless validity is
    /// `check`.
    function decode(bytes memory txBytes) internal pure returns (Transaction memory) {
        checkLayout(txBytes);
        return abi.decode(txBytes, (Transaction));
    }

    /// @notice Decodes and enforces the stateless rules (spec: TX-1..TX-5).
    function decodeValid(bytes memory txBytes) internal pure returns (Transaction memory transaction) {
        transaction = decode(txBytes);
        check(transaction);
    }

    /// @notice The output of `txBytes` if it is a valid deposit in its one canonical layout (spec:
    /// ENC-2, TX-2, TX-4): ten words `0x20, 2, 0x80, 0xa0, metadata, 0, 1, owner, token, amount` with
    /// owner and token clean addresses, owner and amount nonzero. `ok` false means "not shown valid
    /// here": the caller then decodes with `decodeValid`, which accepts or rejects with its own errors.
    /// @dev Read straight from calldata (issue 19: `decodeValid` builds the whole transaction in
    /// memory, ~1-2k gas more per deposit). Every condition is one `decodeValid` needs for a deposit
    /// (`checkLayout` with no inputs and one output fixes all but the metadata word, `check` adds the
    /// nonzero owner and amount), so whatever this accepts `decodeValid` accepts with the same output,
    /// and whatever it refuses goes to `decodeValid`: deposits are accepted and refused exactly as
    /// before (`testFuzz_DepositFastPathAgreesWithDecodeValid`).
    function decodeDeposit(bytes calldata txBytes) internal pure returns (bool ok, Output memory out) {
        if (txBytes.length != 320) return (false, out);
        uint256 owner;
        uint256 token;
        uint256 amount;
        assembly ("memory-safe") {
            let p := txBytes.offset
            ok := and(
                and(
                    and(eq(calldataload(p), 0x20), eq(calldataload(add(p, 32)), TYPE_DEPOSIT)),
                    and(eq(calldataload(add(p, 64)), 0x80), eq(calldataload(add(p, 96)), 0xa0))
                ),
                and(iszero(calldataload(add(p, 160))), eq(calldataload(add(p, 192)), 1))
            )
            owner := calldataload(add(p, 224))
            token := calldataload(add(p, 256))
            amount := calldataload(add(p, 288))
        }
        ok = ok && owner != 0 && owner <= type(uint160).max && token <= type(uint160).max && amount != 0;
        // forge-lint: disable-next-line(unsafe-typecast)
        if (ok) out = Output(address(uint160(owner)), address(uint160(token)), amount);
    }

    /// @notice The stateless rules (spec: TX-1..TX-5).
    function check(Transaction memory transaction) internal pure {
        uint8 t = transaction.txType;
        uint256 nIn = transaction.inputs.length;
        uint256 nOut = transaction.outputs.length;
        bool inputsOk;
        bool outputsOk;
        if (t == TYPE_PAYMENT) {
            inputsOk = nIn >= 1 && nIn <= MAX_INPUTS;
            outputsOk = nOut >= 1 && nOut <= MAX_OUTPUTS;
        } else if (t == TYPE_DEPOSIT) {
            inputsOk = nIn == 0;
            outputsOk = nOut == 1;
        } else if (t == TYPE_FEE) {
            inputsOk = nIn == 0;
            outputsOk = nOut >= 1 && nOut <= MAX_OUTPUTS;
        } else {
            revert PlasmaTxUnknownType(t);
        }
        if (!inputsOk) revert PlasmaTxWrongInputCount(t, nIn);
        if (!outputsOk) revert PlasmaTxWrongOutputCount(t, nOut);
        for (uint256 i = 0; i < nIn; ++i) {
            uint256 pos = transaction.inputs[i];
            if (!UtxoPosLib.isValid(pos)) revert PlasmaTxInvalidPosition(i, pos);
            for (uint256 j = 0; j < i; ++j) {
                if (transaction.inputs[j] == pos) revert PlasmaTxDuplicateInput(pos);
            }
        }
        for (uint256 i = 0; i < nOut; ++i) {
            Output memory o = transaction.outputs[i];
            if (o.amount == 0) revert PlasmaTxZeroAmount(i);
            if (o.owner == address(0)) revert PlasmaTxZeroOwner(i);
            // spec: TX-5: per-token sums must fit; checking each output against the running
            // sum of earlier outputs of its token is enough.
            uint256 sum = o.amount;
            for (uint256 j = 0; j < i; ++j) {
                if (transaction.outputs[j].token == o.token) {
                    unchecked {
                        uint256 next = sum + transaction.outputs[j].amount;
                        if (next < sum) revert PlasmaTxAmountOverflow(o.token);
                        sum = next;
                    }
                }
            }
        }
    }

    /// @notice `keccak256(txBytes)` (spec: ENC-5).
    function hash(bytes memory txBytes) internal pure returns (bytes32) {
        return keccak256(txBytes);
    }

    /// @notice The L1 identity of an output (spec: OUT-1). Transactions without inputs are
    /// identified with their position, since two equal deposits have equal bytes.
    function outputId(bytes32 txHash, bool hasInputs, uint256 outputIndex, uint256 utxoPos)
        internal
        pure
        returns (bytes32)
    {
        return hasInputs ? keccak256(abi.encode(txHash, outputIndex)) : keccak256(abi.encode(txHash, utxoPos));
    }
}
