// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../../contracts/PlasmaFramework.sol";
import {BatchExitGame} from "../../contracts/exits/BatchExitGame.sol";
import {StandardExitGame} from "../../contracts/exits/StandardExitGame.sol";
import {IBatchExitGame} from "../../contracts/interfaces/IBatchExitGame.sol";
import {PlasmaEip712} from "../../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../../contracts/libraries/UtxoPosLib.sol";
import {BatchFixtures} from "../utils/BatchFixtures.sol";
import {TestToken} from "../utils/Tokens.sol";
import {Vm} from "../utils/Vm.sol";

/// @dev Plays, at random, an honest operator committing small blocks of real payments (ETH and one
/// ERC-20), honest owners (alice, bob, carol) and their watchtower starting batch exits (own groups
/// and groups under EXIT-9 authorizations, random ascending subsets above the watermark) and standard
/// exits, a cheater (mallory) claiming outputs that do not exist, are someone else's, are larger than
/// claimed, that she spent or exited, and standard-exiting claimed or spent outputs; challengers
/// striking claims (CHAL-6, CHAL-7, CHAL-8, also after processing as releases), challenging standard
/// exits (EXIT-4, CHAL-10), demanding and answering proofs (CHAL-9); anyone processing (warping time),
/// paying claims out (EXIT-15) and withdrawing.
///
/// Ghost model, independent of the contracts' own bookkeeping: every output with its owner, token,
/// amount and transaction; every claim classified as real (an output exists at its position with its
/// owner, token and amount) or not; every settlement of an output (a standard exit paid, a batch claim
/// paid) by output; what each batch reserved (measured as the change of `totalCredited` at its
/// processing), paid (events), released (the fall of `totalCredited`, or the rise of the debt pool,
/// at strikes and payouts) and was repaid on its debt (events); what the debt pool paid to accounts
/// and freed (spec: EXIT-16).
contract BatchExitHandler is BatchFixtures {
    uint256 internal constant NONE = type(uint256).max;
    uint256 internal constant N_ACTORS = 4; // alice, bob, carol, mallory
    uint256 internal constant MAX_CLAIMS = 12; // per group

    struct Out {
        address owner;
        uint256 actor;
        address token;
        uint256 amount;
        bytes txBytes; // its transaction
        uint8 oindex;
        uint256 pos;
        bytes spendTx; // a spend its owner signed (included or not), or empty
        uint256 settled; // times an exit paid it (standard or batch)
    }

    /// What the ghost knows of one claim.
    struct ClaimG {
        uint256 out; // the output it claims exactly, or NONE (a claim nobody can prove)
        bool struck; // struck by a challenge, a void payout or an unanswered demand
        bool paid; // paid (finalized by EXIT-15)
    }

    TestToken public tok;
    address[2] internal tokens;

    Out[] internal outs;
    mapping(uint256 pos => uint256 idxPlusOne) internal outAt;
    mapping(bytes32 outputId => uint256 idxPlusOne) internal outById;
    mapping(uint256 blknum => bytes) internal depositTxOf;
    mapping(uint256 batchId => mapping(uint256 index => ClaimG)) internal claims;
    mapping(uint256 batchId => bool) internal processed;
    mapping(uint256 out => uint256 batchAndIndexPlusOne) internal claimOf; // its one exact claim
    uint256[] internal seExits; // positions with a standard exit

    address internal watcher;
    address internal processor;
    address[7] internal accounts;
    uint256[4] internal keys;

    // ---- ghosts
    mapping(address token => uint256) public ghostDeposited;
    mapping(address token => uint256) public ghostReleased; // falls of totalCredited at batch releases
    mapping(address token => uint256) public ghostToPool; // batch releases into the debt pool
    mapping(address token => uint256) public ghostPoolFreed; // falls of totalCredited at settleDebts
    mapping(address token => uint256) public ghostDebtCredited; // what settleDebts credited to accounts
    mapping(address token => uint256) public ghostToppedUp; // what settleDebts repaid into batch reserves
    mapping(uint256 batchId => uint256) public ghostBatchToppedUp;
    uint256 public ghostPartialPaid; // claims paid neither in full nor zero (void)
    mapping(address token => uint256) public ghostSeCredited; // what processings credited standard exits
    mapping(uint256 batchId => uint256) public ghostReserved; // what processing the batch reserved
    mapping(uint256 batchId => uint256) public ghostBatchPaid; // what its payouts credited
    uint256 public ghostPaidTwice; // settlements of an output already settled
    uint256 public ghostStruckPaid; // claims paid after being struck
    uint256 public ghostUnprovenPaid; // claims paid that claim no output exactly
    uint256 public ghostHonestFailures; // honest steps the contracts refused
    bytes public lastHonestFailure;
    bytes32 public lastHonestStep;
    bool public ghostShortfall; // a reserve or credit was capped (an unstruck fake drained the vault)

    /// What the run exercised: successful protocol steps by name.
    mapping(bytes32 step => uint256) public done;

    constructor() {
        setUp();
        (watcher,) = makeAccount("watcher");
        (processor,) = makeAccount("processor");
        accounts = [alice, bob, carol, mallory, watcher, processor, operator];
        keys = [aliceKey, bobKey, carolKey, malloryKey];
        tok = new TestToken();
        tokens = [address(0), address(tok)];
        // Every run starts with outputs of every actor in both tokens, deposits and payments.
        for (uint256 a = 0; a < N_ACTORS; ++a) {
            _deposit(a, 10 ether * (a + 1), false);
            _deposit(a, 7 ether * (a + 1), true);
        }
        _pay(1, 3);
        _pay(2, 3);
    }

    // ---------------------------------------------------------------- the chain

    function deposit(uint256 actorSeed, uint256 amount, bool erc20) external {
        _deposit(actorSeed % N_ACTORS, amount, erc20);
    }

    function _deposit(uint256 a, uint256 amount, bool erc20) internal {
        if (framework.nextDepositBlock() >= 400) return; // stay clear of deposit fees (BOND-2)
        address owner = accounts[a];
        amount = bound(amount, 1 ether, 50 ether);
        address token = erc20 ? address(tok) : address(0);
        bytes memory txBytes = _depositTx(owner, token, amount);
        uint256 blknum = framework.nextChildBlock() - framework.CHILD_BLOCK_INTERVAL() + framework.nextDepositBlock();
        if (erc20) {
            tok.mint(owner, amount);
            vm.prank(owner);
            tok.approve(address(framework), amount);
            vm.prank(owner);
            framework.depositErc20(txBytes);
        } else {
            vm.deal(owner, owner.balance + amount);
            vm.prank(owner);
            framework.depositEth{value: amount}(txBytes);
        }
        blockTimestamp[blknum] = uint64(block.timestamp);
        bytes[] memory one = new bytes[](1);
        one[0] = txBytes;
        depositRoots[blknum] = _root(one);
        depositTxOf[blknum] = txBytes;
        _pushOut(owner, a, token, amount, txBytes, 0, UtxoPosLib.pack(blknum, 0, 0));
        ghostDeposited[token] += amount;
    }

    /// @dev The honest operator commits a block of up to three payments, each by the owner of an
    /// output it may include (unspent, not exiting: LEDGER-9) to random actors, in 1 to 3 outputs.
    function pay(uint256 seed, uint256 nTx) external {
        _pay(seed, nTx);
    }

    function _pay(uint256 seed, uint256 nTx) internal {
        nTx = bound(nTx, 1, 3);
        bytes[] memory txs = new bytes[](nTx);
        uint256[] memory inputs = new uint256[](nTx);
        uint256 n;
        for (uint256 k = 0; k < nTx; ++k) {
            uint256 o = _pick(uint256(keccak256(abi.encode(seed, k))), _includable);
            if (o == NONE || _contains(inputs, n, o)) continue;
            inputs[n] = o;
            txs[n] = _spendTx(o, uint256(keccak256(abi.encode(seed, k, "to"))), n);
            ++n;
        }
        if (n == 0) return;
        assembly ("memory-safe") {
            mstore(txs, n)
        }
        uint256 blknum = _submitBlock(txs);
        for (uint256 k = 0; k < n; ++k) {
            outs[inputs[k]].spendTx = txs[k];
            PlasmaTx.Transaction memory t = abi.decode(txs[k], (PlasmaTx.Transaction));
            for (uint256 j = 0; j < t.outputs.length; ++j) {
                PlasmaTx.Output memory o = t.outputs[j];
                _pushOut(o.owner, _actorOf(o.owner), o.token, o.amount, txs[k], uint8(j), UtxoPosLib.pack(blknum, k, j));
            }
        }
        _did("blockCommitted");
    }

    /// @dev Mallory signs a spend of one of her outputs (to bob) that nobody includes: a claim or a
    /// standard exit of that output is now challengeable (CHAL-7, EXIT-4).
    function mallorySpends(uint256 seed) external {
        uint256 o = _pick(seed, _malloryUnspent);
        if (o == NONE) return;
        outs[o].spendTx = _spendTx(o, 1, 7);
        _did("mallorySpent");
    }

    // ---------------------------------------------------------------- exits

    /// @dev An honest exitor (an owner, or the watchtower) starts a batch exit of one token: a group
    /// per owner chosen, each a random ascending subset of that owner's claimable outputs above its
    /// watermark; groups of others carry the owner's authorization (sometimes expired: skipped).
    function startBatch(uint256 exitorSeed, uint256 ownersMask, uint256 subsetSeed, bool erc20) external {
        address exitor = exitorSeed % 4 == 3 ? watcher : accounts[exitorSeed % 3];
        address token = tokens[erc20 ? 1 : 0];
        BatchExitGame.Group[] memory groups = new BatchExitGame.Group[](3);
        uint256 g;
        for (uint256 a = 0; a < 3; ++a) {
            if ((ownersMask >> a) & 1 == 0) continue;
            bytes memory recs = _honestClaims(a, token, uint256(keccak256(abi.encode(subsetSeed, a))));
            if (recs.length == 0) continue;
            if (accounts[a] == exitor) {
                groups[g++] = _group(exitor, recs);
            } else {
                bool expired = (subsetSeed >> (8 + a)) % 8 == 0;
                groups[g++] = _authorized(a, exitor, expired, recs);
            }
        }
        if (g == 0) return;
        assembly ("memory-safe") {
            mstore(groups, g)
        }
        _startBatch(exitor, token, groups, true);
    }

    /// @dev Mallory starts a batch of her own claims mixing her real outputs with claims nobody can
    /// prove: a position in a block never committed, an empty leaf of the last child block, another
    /// owner's output, her output with a larger amount; and claims of outputs she spent or exited.
    function malloryBatch(uint256 kinds, uint256 seed, bool erc20) external {
        address token = tokens[erc20 ? 1 : 0];
        uint256 mark = batchGame.claimedUpTo(mallory, token);
        uint256[] memory pos = new uint256[](8);
        uint256[] memory amt = new uint256[](8);
        uint256 n;
        uint256 last = framework.nextChildBlock() - framework.CHILD_BLOCK_INTERVAL();
        if (last == 0) return;
        // A deposit slot of the interval before the last child block: never committed (< 400 used).
        if (kinds & 1 != 0) (pos[n], amt[n++]) = (UtxoPosLib.pack(last - 1, 0, 0), bound(seed, 1, 20 ether));
        // An empty leaf of the last child block.
        if (kinds & 2 != 0) {
            (pos[n], amt[n++]) =
            (UtxoPosLib.pack(last, blockTxs[last].length + seed % 5, 0), bound(seed >> 8, 1, 20 ether));
        }
        // Someone else's output, claimed as hers.
        uint256 o = _pick(seed >> 16, _othersOutput);
        if (kinds & 4 != 0 && o != NONE && outs[o].token == token) (pos[n], amt[n++]) = (outs[o].pos, outs[o].amount);
        // Her own outputs: exact (maybe spent or exiting), or inflated.
        for (uint256 k = 0; k < 3; ++k) {
            o = _pick(uint256(keccak256(abi.encode(seed, k))), _malloryIncluded);
            if (o == NONE || outs[o].token != token) continue;
            bool inflate = (kinds >> (3 + k)) & 1 != 0;
            (pos[n], amt[n++]) = (outs[o].pos, outs[o].amount + (inflate ? 1 + (seed >> 32) % 30 ether : 0));
        }
        bytes memory recs = _sortedAbove(pos, amt, n, mark);
        if (recs.length == 0) return;
        _startBatch(mallory, token, _groups1(mallory, recs), false);
    }

    /// @dev An owner starts a standard exit: honest owners only of outputs they neither spent nor
    /// claimed (WALLET-1); mallory of any included output of hers, spent or claimed.
    function startStandardExit(uint256 seed) external {
        uint256 o = _pick(seed, _seExitable);
        if (o != NONE) _seStart(o);
    }

    /// @dev Mallory exits one output twice: a standard exit and a batch claim, in either order (the
    /// first to land makes the other challengeable: CHAL-8 or CHAL-10; unchallenged, the second paid
    /// is void).
    function malloryDoubleExit(uint256 seed, bool exitFirst) external {
        uint256 o = _pick(seed, _malloryFresh);
        if (o == NONE) return;
        Out storage u = outs[o];
        if (u.pos <= batchGame.claimedUpTo(mallory, u.token)) return;
        if (exitFirst) _seStart(o);
        _startBatch(mallory, u.token, _groups1(mallory, _rec(u.pos, u.amount)), false);
        if (!exitFirst) _seStart(o);
        _did("doubleExit");
    }

    function _seStart(uint256 o) internal {
        Out storage u = outs[o];
        vm.deal(u.owner, u.owner.balance + SE_BOND);
        vm.prank(u.owner);
        try seGame.startStandardExit{value: SE_BOND}(_startArgs(u.pos, u.txBytes)) {
            seExits.push(u.pos);
            _did("seStarted");
        } catch (bytes memory err) {
            if (u.owner != mallory) _failed("seStart", err);
        }
    }

    // ---------------------------------------------------------------- challenges

    /// @dev A challenger strikes a claim that can be struck (CHAL-6 / CHAL-7 / CHAL-8; after
    /// processing CHAL-6 / CHAL-8 as releases).
    function strike(uint256 batchSeed, uint256 indexSeed) external {
        uint256 nb = batchGame.batchCount();
        if (nb == 0) return;
        uint256 id = 1 + batchSeed % nb;
        uint256 n = known[id].length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (indexSeed % n + k) % n;
            if (_tryStrike(id, i, carol)) return;
        }
    }

    /// @dev Anyone challenges a standard exit of a live claim (CHAL-10) or of a spent output (EXIT-4).
    function challengeStandardExit(uint256 seed) external {
        uint256 n = seExits.length;
        for (uint256 k = 0; k < n; ++k) {
            if (_challengeSe(seExits[(seed % n + k) % n], seed)) return;
        }
    }

    /// @dev Someone (carol, or mallory griefing) demands the proof of a live claim in phase 1.
    function demand(uint256 batchSeed, uint256 indexSeed, bool byMallory) external {
        uint256 nb = batchGame.batchCount();
        for (uint256 k = 0; k < nb; ++k) {
            uint256 id = 1 + (batchSeed % nb + k) % nb;
            BatchExitGame.Batch memory b = batchGame.batches(id);
            if (b.status != BatchExitGame.Status.Active || block.timestamp > b.startedAt + PERIOD / 2) continue;
            uint256 n = known[id].length;
            for (uint256 j = 0; j < n; ++j) {
                uint256 i = (indexSeed % n + j) % n;
                if (batchGame.claimState(id, i) != 0) continue;
                address who = byMallory ? mallory : carol;
                vm.deal(who, who.balance + DEMAND_BOND);
                vm.prank(who);
                try batchGame.demandClaimProof{value: DEMAND_BOND}(_ref(id, i)) {
                    _did("demanded");
                } catch (bytes memory err) {
                    _failed("demand", err);
                }
                return;
            }
        }
    }

    /// @dev Anyone answers a demand on a claim of an output that exists exactly as claimed.
    function answer(uint256 seed) external {
        uint256 nb = batchGame.batchCount();
        for (uint256 k = 0; k < nb; ++k) {
            uint256 id = 1 + (seed % nb + k) % nb;
            if (_status(id) != BatchExitGame.Status.Active) continue;
            for (uint256 i = 0; i < known[id].length; ++i) {
                if (_answer(id, i)) return;
            }
        }
    }

    // ---------------------------------------------------------------- processing, payouts, withdrawals

    /// @dev Time passes and due exits are processed one by one. The watchtower does not act here: its
    /// duties are a step of their own (`watch`), so claims and exits it would have stopped are often
    /// processed unchallenged (fakes reserved and released, outputs exited twice, demands unanswered).
    function advance(uint256 secondsAhead, uint256 maxExits) external {
        skip(bound(secondsAhead, 1, 2 * PERIOD));
        _processDue(bound(maxExits, 1, 6));
    }

    /// @dev The watchtower does all its duties at once (see `_duties`).
    function watch() external {
        _duties();
        _did("watched");
    }

    /// @dev Anyone pays out claims of processed batches: a random subset of every claim there (real
    /// ones with their proofs; already paid or struck ones are skipped by the contract).
    function payout(uint256 seed, uint256 count) external {
        count = bound(count, 1, 6);
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](count);
        uint256 n;
        uint256 nb = batchGame.batchCount();
        for (uint256 k = 0; k < nb && n < count; ++k) {
            uint256 id = 1 + (seed % nb + k) % nb;
            if (!processed[id]) continue;
            uint256 len = known[id].length;
            for (uint256 j = 0; j < len && n < count; ++j) {
                uint256 i = (seed / 7 % len + j) % len;
                ClaimG storage c = claims[id][i];
                if (c.out == NONE || (seed >> (j % 64)) & 1 == 0) continue;
                p[n++] = _payout(id, i, outs[c.out].txBytes);
            }
        }
        if (n == 0) return;
        assembly ("memory-safe") {
            mstore(p, n)
        }
        _payoutCall(p, true);
    }

    /// @dev Someone tries to pay out a claim nobody can prove with the transaction at its position:
    /// it must revert.
    function payoutUnproven(uint256 seed) external {
        uint256 nb = batchGame.batchCount();
        for (uint256 k = 0; k < nb; ++k) {
            uint256 id = 1 + (seed % nb + k) % nb;
            if (!processed[id]) continue;
            for (uint256 i = 0; i < known[id].length; ++i) {
                if (claims[id][i].out != NONE || batchGame.claimState(id, i) != 0) continue;
                (bool ok, bytes memory txBytes) = _txAt(known[id][i].pos);
                if (!ok) continue;
                BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](1);
                p[0] = _payout(id, i, txBytes);
                _payoutCall(p, false);
                return;
            }
        }
    }

    /// @dev The demander of a claim left unanswered at processing collects (CHAL-9).
    function collect(uint256 seed) external {
        uint256 nb = batchGame.batchCount();
        for (uint256 k = 0; k < nb; ++k) {
            uint256 id = 1 + (seed % nb + k) % nb;
            if (!processed[id]) continue;
            for (uint256 i = 0; i < known[id].length; ++i) {
                if (batchGame.claimState(id, i) != 1) continue;
                vm.prank(processor);
                try batchGame.collectDemand(id, i) {
                    _did("collected");
                } catch (bytes memory err) {
                    _failed("collect", err);
                }
                return;
            }
        }
    }

    function withdraw(uint256 actorSeed, bool erc20) external {
        address a = accounts[actorSeed % accounts.length];
        address token = tokens[erc20 ? 1 : 0];
        if (framework.withdrawable(a, token) == 0) return;
        vm.prank(a);
        try framework.withdraw(token) {
            _did("withdrawn");
        } catch (bytes memory err) {
            _failed("withdraw", err);
        }
    }

    /// @dev Anyone settles debts from the pool (spec: EXIT-16), at most `maxDebts` per token.
    function settle(uint256 maxDebts) external {
        _settleDebts(bound(maxDebts, 1, 4));
    }

    /// @dev End of a run: the watchtower does its duties, every exit comes due and is processed, every
    /// claim nobody can prove that was left is released, every debt the pool can pay is settled, and
    /// every real live claim is paid out (again after settling, for claims a short reserve deferred).
    function drain() external {
        _duties();
        skip(3 * PERIOD);
        _processDue(type(uint256).max);
        for (uint256 round = 0; round < 3; ++round) {
            uint256 nb = batchGame.batchCount();
            for (uint256 id = 1; id <= nb; ++id) {
                if (!processed[id]) continue;
                for (uint256 i = 0; i < known[id].length; ++i) {
                    if (batchGame.claimState(id, i) != 0) continue;
                    if (claims[id][i].out == NONE) {
                        _tryStrike(id, i, watcher);
                    } else {
                        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](1);
                        p[0] = _payout(id, i, outs[claims[id][i].out].txBytes);
                        _payoutCall(p, true);
                    }
                }
            }
            _settleDebts(type(uint256).max);
        }
    }

    function _settleDebts(uint256 maxDebts) internal {
        for (uint256 t = 0; t < 2; ++t) {
            address token = tokens[t];
            (uint256 head, uint256 tail,, uint256 pool) = framework.debtBook(token);
            if (head == tail || pool == 0) continue;
            uint256 before = framework.totalCredited(token);
            vm.recordLogs();
            vm.prank(processor);
            try framework.settleDebts(token, maxDebts) {}
            catch (bytes memory err) {
                _failed("settleDebts", err);
                continue;
            }
            ghostPoolFreed[token] += before - framework.totalCredited(token);
            Vm.Log[] memory logs = vm.getRecordedLogs();
            for (uint256 k = 0; k < logs.length; ++k) {
                bytes32 sig = logs[k].topics[0];
                if (sig == PlasmaFramework.Credited.selector) {
                    ghostDebtCredited[token] += abi.decode(logs[k].data, (uint256));
                } else if (sig == BatchExitGame.BatchReserveRepaid.selector) {
                    uint256 amount = abi.decode(logs[k].data, (uint256));
                    ghostToppedUp[token] += amount;
                    ghostBatchToppedUp[uint256(logs[k].topics[1])] += amount;
                    if (amount != 0) _did("reserveRepaid");
                }
            }
            _did("debtsSettled");
        }
    }

    // ---------------------------------------------------------------- internals: batches

    function _startBatch(address exitor, address token, BatchExitGame.Group[] memory groups, bool honest) internal {
        uint256 y = _youngest(groups);
        uint256 blknum = UtxoPosLib.blknum(y);
        if (framework.blockCommitments(blknum) == 0) return;
        uint256 value = BATCH_BOND + CLAIM_BOND * _claimCount(groups);
        vm.deal(exitor, exitor.balance + value);
        vm.recordLogs();
        vm.prank(exitor);
        try batchGame.startBatchExit{value: value}(token, _blockRoot(blknum), blockTimestamp[blknum], groups) returns (
            uint256 id
        ) {
            Vm.Log[] memory logs = vm.getRecordedLogs();
            for (uint256 k = 0; k < logs.length; ++k) {
                if (logs[k].topics[0] == BatchExitGame.BatchGroupSkipped.selector) _did("groupSkipped");
            }
            if (id == 0) return;
            _learnFrom(id, logs);
            for (uint256 i = 0; i < known[id].length; ++i) {
                Known storage c = known[id][i];
                uint256 o = outAt[c.pos];
                bool exact = o != 0 && outs[o - 1].owner == c.owner && outs[o - 1].amount == c.amount
                    && outs[o - 1].token == token;
                claims[id][i].out = exact ? o - 1 : NONE;
                if (exact) claimOf[o - 1] = ((id << 32) | i) + 1;
            }
            _did(honest ? bytes32("batchStarted") : bytes32("malloryBatch"));
            if (groups.length > 1 || groups[0].owner != exitor) _did("batchAuthorized");
        } catch (bytes memory err) {
            if (honest) _failed("batchStart", err);
        }
    }

    /// @dev `_learn` of the fixtures, from logs already read.
    function _learnFrom(uint256 batchId, Vm.Log[] memory logs) internal {
        bytes32 sig = BatchExitGame.BatchExitGroup.selector;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics.length == 3 && logs[i].topics[0] == sig && uint256(logs[i].topics[1]) == batchId) {
                address owner = address(uint160(uint256(logs[i].topics[2])));
                (, bytes memory recs) = abi.decode(logs[i].data, (uint256, bytes));
                for (uint256 k = 0; k < recs.length / 20; ++k) {
                    (uint256 p, uint256 amount) = _decodeRec(recs, k);
                    known[batchId].push(Known(owner, p, amount));
                }
            }
        }
    }

    function _authorized(uint256 a, address exitor, bool expired, bytes memory recs)
        internal
        view
        returns (BatchExitGame.Group memory)
    {
        uint256 deadline = expired ? block.timestamp - 1 : block.timestamp + 1 days;
        uint256 nonce = seGame.authorizationNonce(accounts[a]);
        bytes32 digest = PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(exitor, deadline, nonce)
        );
        return BatchExitGame.Group(accounts[a], deadline, nonce, _sign(keys[a], digest), recs);
    }

    /// @dev A random ascending subset of actor `a`'s claimable outputs of `token` above its watermark.
    function _honestClaims(uint256 a, address token, uint256 seed) internal view returns (bytes memory recs) {
        address owner = accounts[a];
        uint256 mark = batchGame.claimedUpTo(owner, token);
        uint256[] memory pos = new uint256[](MAX_CLAIMS);
        uint256[] memory amt = new uint256[](MAX_CLAIMS);
        uint256 n;
        for (uint256 o = 0; o < outs.length && n < MAX_CLAIMS; ++o) {
            Out storage u = outs[o];
            if (u.owner != owner || u.token != token || u.pos <= mark || !_unencumbered(o)) continue;
            if ((seed >> (o % 128)) & 3 == 0) continue; // three in four
            (pos[n], amt[n++]) = (u.pos, u.amount);
        }
        return _sortedAbove(pos, amt, n, mark);
    }

    /// @dev The records of the `n` claims, sorted by position, duplicates and those not above `mark`
    /// dropped.
    function _sortedAbove(uint256[] memory pos, uint256[] memory amt, uint256 n, uint256 mark)
        internal
        pure
        returns (bytes memory recs)
    {
        for (uint256 i = 1; i < n; ++i) {
            for (uint256 j = i; j > 0 && pos[j - 1] > pos[j]; --j) {
                (pos[j - 1], pos[j]) = (pos[j], pos[j - 1]);
                (amt[j - 1], amt[j]) = (amt[j], amt[j - 1]);
            }
        }
        uint256 prev = mark;
        for (uint256 i = 0; i < n; ++i) {
            if (pos[i] <= prev || amt[i] == 0 || amt[i] > type(uint96).max) continue;
            recs = abi.encodePacked(recs, _rec(pos[i], amt[i]));
            prev = pos[i];
        }
    }

    // ---------------------------------------------------------------- internals: challenges

    /// @dev Strikes claim `i` of batch `id` by whichever challenge applies, as `who`. Returns whether
    /// a strike was made. A strike after processing releases the claim's share of the reserve: the
    /// fall of `totalCredited` is booked as released.
    function _tryStrike(uint256 id, uint256 i, address who) internal returns (bool) {
        bool active = _status(id) == BatchExitGame.Status.Active;
        uint256 kind = _strikeKind(id, i, active);
        if (kind == 0) return false;
        address token = batchGame.batchToken(id);
        uint256 before = framework.totalCredited(token);
        uint256 poolBefore = _pool(token);
        (bool ok, bytes memory err) = _strikeBy(_ref(id, i), claims[id][i].out, kind, who);
        bytes32 step = kind == 7
            ? bytes32("chal7")
            : kind == 6
                ? (active ? bytes32("chal6") : bytes32("release6"))
                : (active ? bytes32("chal8") : bytes32("release8"));
        if (!ok) {
            _failed(step, err);
            return false;
        }
        ghostReleased[token] += before - framework.totalCredited(token);
        ghostToPool[token] += _pool(token) - poolBefore;
        _did(step);
        claims[id][i].struck = true;
        return true;
    }

    /// @dev The challenge that strikes claim `i` of batch `id` (6, 7 or 8), or 0 if none applies.
    function _strikeKind(uint256 id, uint256 i, bool active) internal view returns (uint256) {
        uint8 state = batchGame.claimState(id, i);
        if (state > 1 || (state == 1 && !active)) return 0;
        uint256 o = claims[id][i].out;
        if (o == NONE) return 6;
        if (_seFirst(outs[o].pos, id) || _seStatus(outs[o].pos) == 3 || _finalized(o)) return 8;
        if (outs[o].spendTx.length != 0 && active) return 7;
        return 0; // an honest live claim: nothing to strike
    }

    function _strikeBy(IBatchExitGame.ClaimRef memory c, uint256 o, uint256 kind, address who)
        internal
        returns (bool ok, bytes memory err)
    {
        bytes memory txBytes;
        bytes memory proof;
        uint64 ts;
        if (kind == 7) {
            txBytes = outs[o].spendTx;
            proof = _signTx(keys[outs[o].actor], txBytes);
        } else {
            bool committed;
            (committed, txBytes) = _txAt(c.utxoPos);
            if (committed) (proof, ts) = _inclusion(c.utxoPos);
        }
        vm.prank(who);
        if (kind == 6) {
            try batchGame.challengeBatchClaimInvalid(c, txBytes, proof, ts) {
                ok = true;
            } catch (bytes memory e) {
                err = e;
            }
        } else if (kind == 8) {
            try batchGame.challengeBatchClaimExited(c, txBytes, proof, ts) {
                ok = true;
            } catch (bytes memory e) {
                err = e;
            }
        } else {
            try batchGame.challengeBatchClaimSpent(c, txBytes, 0, proof) {
                ok = true;
            } catch (bytes memory e) {
                err = e;
            }
        }
    }

    /// @dev Challenges the standard exit at `pos` if it is active: of a live claim (CHAL-10), or of a
    /// spent output (EXIT-4).
    function _challengeSe(uint256 pos, uint256 seed) internal returns (bool) {
        if (_seStatus(pos) != 1) return false;
        uint256 o = outAt[pos] - 1;
        (uint256 id, uint256 i) = _liveClaimOf(o, seed);
        // CHAL-10 only if the batch started first; otherwise CHAL-8 strikes the claim (`_duties`).
        if (id != 0 && !_seFirst(pos, id)) {
            vm.prank(carol);
            try seGame.challengeStandardExitBatchClaimed(pos, id, i, _ref(id, i).proof) {
                _did("chal10");
                return true;
            } catch (bytes memory err) {
                _failed("chal10", err);
                return false;
            }
        }
        bytes memory s = outs[o].spendTx;
        if (s.length == 0) return false;
        bytes memory sig = _signTx(keys[outs[o].actor], s);
        vm.prank(carol);
        try seGame.challengeStandardExit(pos, s, 0, sig) {
            _did("seChallenged");
            return true;
        } catch (bytes memory err) {
            _failed("seChallenge", err);
            return false;
        }
    }

    /// @dev The live claim of output `o` exactly (there is at most one: only its owner's groups can
    /// claim it exactly, and the watermark lets them claim it once), or (0, 0).
    function _liveClaimOf(uint256 o, uint256) internal view returns (uint256 id, uint256 i) {
        uint256 c = claimOf[o];
        if (c == 0) return (0, 0);
        (id, i) = ((c - 1) >> 32, (c - 1) & 0xffffffff);
        if (batchGame.claimState(id, i) != 0) return (0, 0);
    }

    function _answer(uint256 id, uint256 i) internal returns (bool) {
        ClaimG storage g = claims[id][i];
        if (g.out == NONE || batchGame.claimState(id, i) != 1) return false;
        (bytes memory proof, uint64 ts) = _inclusion(known[id][i].pos);
        vm.prank(watcher);
        try batchGame.answerClaimDemand(_ref(id, i), outs[g.out].txBytes, proof, ts) {
            _did("answered");
            return true;
        } catch (bytes memory err) {
            _failed("answer", err);
            return false;
        }
    }

    /// @dev The perfect watchtower: every claim that can be struck is, every standard exit that can be
    /// challenged is, every demand on a real claim is answered.
    function _duties() internal {
        uint256 nb = batchGame.batchCount();
        for (uint256 id = 1; id <= nb; ++id) {
            if (_status(id) != BatchExitGame.Status.Active) continue;
            for (uint256 i = 0; i < known[id].length; ++i) {
                if (!_tryStrike(id, i, watcher)) _answer(id, i);
            }
        }
        for (uint256 k = 0; k < seExits.length; ++k) {
            _challengeSe(seExits[k], 0);
        }
    }

    // ---------------------------------------------------------------- internals: settlement

    /// @dev Processes due exits one call per exit, attributing each call's change of `totalCredited`
    /// to the exit it settled.
    function _processDue(uint256 maxExits) internal {
        for (uint256 t = 0; t < 2; ++t) {
            address token = tokens[t];
            for (uint256 k = 0; k < maxExits; ++k) {
                (uint256 head,) = framework.queueHead(token);
                if (head == 0 || head >> 192 > block.timestamp) break;
                uint256 before = framework.totalCredited(token);
                vm.recordLogs();
                vm.prank(processor);
                try framework.processExits(token, head, 1) {}
                catch (bytes memory err) {
                    _failed("process", err);
                    break;
                }
                uint256 delta = framework.totalCredited(token) - before;
                _settled(token, vm.getRecordedLogs(), delta);
            }
        }
    }

    function _settled(address token, Vm.Log[] memory logs, uint256 delta) internal {
        for (uint256 k = 0; k < logs.length; ++k) {
            bytes32 sig = logs[k].topics[0];
            if (sig == PlasmaFramework.CreditShortfall.selector) ghostShortfall = true;
            if (sig == PlasmaFramework.StandardExitPaid.selector) {
                ghostSeCredited[token] += delta;
                _settle(outById[logs[k].topics[1]] - 1);
                _did("sePaid");
            } else if (sig == BatchExitGame.BatchExitProcessed.selector) {
                uint256 id = uint256(logs[k].topics[1]);
                processed[id] = true;
                ghostReserved[id] = delta;
                // Claims still demanded are struck at processing (CHAL-9).
                for (uint256 i = 0; i < known[id].length; ++i) {
                    if (batchGame.claimState(id, i) == 1) claims[id][i].struck = true;
                    if (batchGame.claimState(id, i) == 0 && claims[id][i].out == NONE) _did("fakeProcessed");
                }
                _did("batchProcessed");
            }
        }
    }

    /// @dev Calls `payoutBatchClaims` and books what it paid from its events: a `BatchClaimPaid` not
    /// preceded by a `Void` strike of the same claim is a settlement of the claim's output.
    function _payoutCall(BatchExitGame.Payout[] memory p, bool expectSuccess) internal {
        uint256[2] memory before = [framework.totalCredited(tokens[0]), framework.totalCredited(tokens[1])];
        uint256[2] memory poolBefore = [_pool(tokens[0]), _pool(tokens[1])];
        vm.recordLogs();
        vm.prank(processor);
        try batchGame.payoutBatchClaims(p) {}
        catch (bytes memory err) {
            if (expectSuccess) _failed("payout", err);
            else _did("unprovenRefused");
            return;
        }
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 t = 0; t < 2; ++t) {
            ghostReleased[tokens[t]] += before[t] - framework.totalCredited(tokens[t]);
            ghostToPool[tokens[t]] += _pool(tokens[t]) - poolBefore[t];
        }
        uint256 lastVoid = NONE;
        uint256 lastVoidBatch;
        for (uint256 k = 0; k < logs.length; ++k) {
            bytes32 sig = logs[k].topics[0];
            if (logs[k].emitter != address(batchGame)) continue;
            uint256 id = logs[k].topics.length > 1 ? uint256(logs[k].topics[1]) : 0;
            uint256 i = logs[k].topics.length > 2 ? uint256(logs[k].topics[2]) : 0;
            if (sig == BatchExitGame.BatchClaimStruck.selector) {
                claims[id][i].struck = true;
                (lastVoidBatch, lastVoid) = (id, i);
                _did("payoutVoid");
            } else if (sig == BatchExitGame.BatchClaimDeferred.selector) {
                _did("claimDeferred");
            } else if (sig == BatchExitGame.BatchClaimPaid.selector) {
                if (lastVoid == i && lastVoidBatch == id) continue;
                ClaimG storage g = claims[id][i];
                uint256 amount = abi.decode(logs[k].data, (uint256));
                if (amount != known[id][i].amount) ++ghostPartialPaid; // never in part (EXIT-16)
                ghostBatchPaid[id] += amount;
                if (g.struck) ++ghostStruckPaid;
                if (g.out == NONE) ++ghostUnprovenPaid;
                else _settle(g.out);
                g.paid = true;
                _did("claimPaid");
            }
        }
    }

    function _settle(uint256 o) internal {
        if (++outs[o].settled > 1) ++ghostPaidTwice;
    }

    // ---------------------------------------------------------------- internals: outputs

    function _pushOut(
        address owner,
        uint256 actor,
        address token,
        uint256 amount,
        bytes memory txBytes,
        uint8 oindex,
        uint256 pos
    ) internal {
        outs.push();
        Out storage o = outs[outs.length - 1];
        o.owner = owner;
        o.actor = actor;
        o.token = token;
        o.amount = amount;
        o.txBytes = txBytes;
        o.oindex = oindex;
        o.pos = pos;
        outAt[pos] = outs.length;
        bool hasInputs = !UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(pos));
        outById[PlasmaTx.outputId(keccak256(txBytes), hasInputs, oindex, pos)] = outs.length;
    }

    /// @dev A payment of output `o` by its owner to random actors (1 to 3 outputs).
    function _spendTx(uint256 o, uint256 seed, uint256 salt) internal view returns (bytes memory) {
        Out storage u = outs[o];
        uint256 nOut = u.amount >= 1000 ? 1 + seed % 3 : 1;
        PlasmaTx.Output[] memory os = new PlasmaTx.Output[](nOut);
        uint256 left = u.amount;
        for (uint256 j = 0; j < nOut; ++j) {
            uint256 amount = j + 1 == nOut ? left : left / (2 + (seed >> (8 * j)) % 3);
            left -= amount;
            os[j] = _out(accounts[(seed >> (16 + 8 * j)) % N_ACTORS], u.token, amount);
        }
        uint256[] memory ins = new uint256[](1);
        ins[0] = u.pos;
        return abi.encode(PlasmaTx.Transaction(PlasmaTx.TYPE_PAYMENT, ins, os, bytes32(outs.length * 8 + salt)));
    }

    /// @dev No spend, no standard exit, no claim of it (live or paid), not finalized.
    function _unencumbered(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        return u.spendTx.length == 0 && _seStatus(u.pos) == 0 && !_claimed(o) && !_finalized(o);
    }

    /// @dev Whether a batch holds a claim of output `o` exactly that was not struck.
    function _claimed(uint256 o) internal view returns (bool) {
        uint256 c = claimOf[o];
        return c != 0 && batchGame.claimState((c - 1) >> 32, (c - 1) & 0xffffffff) != 2;
    }

    function _includable(uint256 o) internal view returns (bool) {
        return _unencumbered(o);
    }

    function _malloryUnspent(uint256 o) internal view returns (bool) {
        return outs[o].owner == mallory && outs[o].spendTx.length == 0;
    }

    function _malloryFresh(uint256 o) internal view returns (bool) {
        return outs[o].owner == mallory && _unencumbered(o);
    }

    function _malloryIncluded(uint256 o) internal view returns (bool) {
        return outs[o].owner == mallory;
    }

    function _othersOutput(uint256 o) internal view returns (bool) {
        return outs[o].owner != mallory;
    }

    function _seExitable(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        if (_seStatus(u.pos) != 0 || _finalized(o)) return false;
        return u.owner == mallory || _unencumbered(o);
    }

    function _pick(uint256 seed, function(uint256) internal view returns (bool) ok) internal view returns (uint256) {
        uint256 n = outs.length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            if (ok(i)) return i;
        }
        return NONE;
    }

    function _contains(uint256[] memory xs, uint256 n, uint256 x) internal pure returns (bool) {
        for (uint256 k = 0; k < n; ++k) {
            if (xs[k] == x) return true;
        }
        return false;
    }

    function _actorOf(address a) internal view returns (uint256) {
        for (uint256 i = 0; i < N_ACTORS; ++i) {
            if (accounts[i] == a) return i;
        }
        revert("not an actor");
    }

    /// @dev Whether the standard exit at `pos` is active and started no later than batch `id` (then it
    /// stands: CHAL-8 strikes the claim, CHAL-10 is refused).
    function _seFirst(uint256 pos, uint256 id) internal view returns (bool) {
        (,, StandardExitGame.Status s,, uint64 startedAt,,,) = seGame.exits(pos);
        return s == StandardExitGame.Status.Active && startedAt <= batchGame.batches(id).startedAt;
    }

    function _pool(address token) internal view returns (uint256 pool) {
        (,,, pool) = framework.debtBook(token);
    }

    function _seStatus(uint256 pos) internal view returns (uint8) {
        (,, StandardExitGame.Status s,,,,,) = seGame.exits(pos);
        return uint8(s);
    }

    function _finalized(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        bool hasInputs = !UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(u.pos));
        return framework.isOutputFinalized(PlasmaTx.outputId(keccak256(u.txBytes), hasInputs, u.oindex, u.pos));
    }

    /// @dev Whether the block of `pos` is committed, and the transaction at its index ("" if none).
    function _txAt(uint256 pos) internal view returns (bool committed, bytes memory txBytes) {
        uint256 blknum = UtxoPosLib.blknum(pos);
        if (framework.blockCommitments(blknum) == 0) return (false, "");
        if (UtxoPosLib.isDepositBlock(blknum)) {
            return (true, UtxoPosLib.txIndex(pos) == 0 ? depositTxOf[blknum] : bytes(""));
        }
        bytes[] storage txs = blockTxs[blknum];
        uint256 t = UtxoPosLib.txIndex(pos);
        return (true, t < txs.length ? txs[t] : bytes(""));
    }

    function _inclusion(uint256 pos) internal view returns (bytes memory proof, uint64 ts) {
        uint256 blknum = UtxoPosLib.blknum(pos);
        return (_proof(blknum, UtxoPosLib.txIndex(pos)), blockTimestamp[blknum]);
    }

    function _did(bytes32 step) internal {
        ++done[step];
    }

    function _failed(bytes32 step, bytes memory err) internal {
        ++ghostHonestFailures;
        lastHonestFailure = err;
        lastHonestStep = step;
    }

    // ---------------------------------------------------------------- views for the invariants

    function fw() external view returns (PlasmaFramework) {
        return framework;
    }

    function game() external view returns (BatchExitGame) {
        return batchGame;
    }

    function tokenAt(uint256 t) external view returns (address) {
        return tokens[t];
    }

    function account(uint256 i) external view returns (address) {
        return accounts[i];
    }

    function nAccounts() external pure returns (uint256) {
        return 7;
    }

    /// @dev Sum of what processed batches of `tkn` reserved, paid, and still hold; and whether some
    /// batch paid more than it reserved.
    function batchBooks(address tkn)
        external
        view
        returns (uint256 reserved, uint256 paid, uint256 holding, uint256 overpaidBatches)
    {
        uint256 nb = batchGame.batchCount();
        for (uint256 id = 1; id <= nb; ++id) {
            if (!processed[id] || batchGame.batchToken(id) != tkn) continue;
            reserved += ghostReserved[id];
            paid += ghostBatchPaid[id];
            uint256 holds = batchGame.batches(id).reserved;
            holding += holds;
            if (ghostBatchPaid[id] + holds > ghostReserved[id] + ghostBatchToppedUp[id]) ++overpaidBatches;
        }
    }

    /// @dev Claims the ghost saw struck (or nobody can prove) whose contract state says paid, and
    /// real live claims of processed batches left unpaid although their batch could pay them or has no
    /// debt left to wait for (spec: EXIT-16: a short batch's claims wait for its debt to be repaid).
    function auditClaims() external view returns (uint256 struckButPaid, uint256 unpaidLive) {
        uint256 nb = batchGame.batchCount();
        for (uint256 id = 1; id <= nb; ++id) {
            for (uint256 i = 0; i < known[id].length; ++i) {
                ClaimG storage g = claims[id][i];
                uint8 s = batchGame.claimState(id, i);
                if ((g.struck || g.out == NONE) && s == 3) ++struckButPaid;
                if (processed[id] && g.out != NONE && !g.struck && s == 0) {
                    if (batchGame.batches(id).reserved >= known[id][i].amount || !_owesBatch(id)) ++unpaidLive;
                }
            }
        }
    }

    /// @dev Whether an outstanding debt of the framework belongs to batch `id`.
    function _owesBatch(uint256 id) internal view returns (bool) {
        address token = batchGame.batchToken(id);
        (uint256 head, uint256 tail,,) = framework.debtBook(token);
        for (uint256 k = head; k < tail; ++k) {
            if (framework.debtAt(token, k).batchId == id) return true;
        }
        return false;
    }
}
