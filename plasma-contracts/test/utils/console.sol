// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title console
/// @notice `console.log` for debugging tests, through forge's console address (the few overloads we
/// use). Never left in committed tests' hot paths.
library console {
    address private constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function _send(bytes memory payload) private view {
        (bool ok,) = CONSOLE.staticcall(payload);
        ok; // The console address never reverts; ignore the flag.
    }

    function log(string memory message) internal view {
        _send(abi.encodeWithSignature("log(string)", message));
    }

    function log(string memory message, uint256 value) internal view {
        _send(abi.encodeWithSignature("log(string,uint256)", message, value));
    }

    function log(string memory message, address value) internal view {
        _send(abi.encodeWithSignature("log(string,address)", message, value));
    }

    function log(string memory message, bytes32 value) internal view {
        _send(abi.encodeWithSignature("log(string,bytes32)", message, value));
    }
}
