// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../../contracts/PlasmaFramework.sol";
import {InFlightExitGame} from "../../contracts/exits/InFlightExitGame.sol";
import {StandardExitGame} from "../../contracts/exits/StandardExitGame.sol";
import {IPlasmaFramework} from "../../contracts/interfaces/IPlasmaFramework.sol";
import {ExitPriority} from "../../contracts/libraries/ExitPriority.sol";
import {PlasmaTx} from "../../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../../contracts/libraries/UtxoPosLib.sol";
import {PlasmaFixtures} from "../utils/PlasmaFixtures.sol";

/// @dev Plays, at random, an honest operator, honest users (alice, bob, carol) who follow the
/// protocol, a cheater (mallory) who double spends her outputs, exits spent ones and piggybacks what
/// she already spent, a perfect watcher that challenges everything challengeable (EXIT-4, CHAL-1,
/// CHAL-3, CHAL-4) and responds (CHAL-2), and anyone deleting and processing exits. In-flight exits
/// are started by a party (the input's owner, spec: EXIT-6).
///
/// Ghost model: every output (deposit, included or in flight) with its owner, amount and deposit
/// lineage (payments have one input, so each output descends from one deposit); who signed which
/// spends; what each processed exit paid, attributed to outputs. Honest entitlement: every output an
/// honest user owns, created by a deposit, an included payment or an honest in-flight payment, and
/// not spent by its owner, is paid to its owner exactly once by the end.
contract InFlightExitHandler is PlasmaFixtures {
    uint256 internal constant IFE_BOND = 0.02 ether;
    uint256 internal constant PB_BOND = 0.005 ether;
    uint256 internal constant NONE = type(uint256).max;

    struct Out {
        address owner;
        uint256 ownerKey;
        uint256 amount;
        bytes txBytes; // the transaction that created it
        uint256 txIdx; // index into txs, NONE for a deposit
        uint8 oindex;
        uint256 pos; // its position once its transaction is included, else 0
        uint256 lineage; // index of the deposit output it descends from
        uint256[] spentBy; // txs whose owner-signed input spends it
        uint256 paid; // times an exit paid it
        bool exiting; // a standard exit or an output piggyback claimed it on L1 (for good)
    }

    struct PTx {
        bytes txBytes;
        uint256 input; // index into outs
        uint256 firstOut;
        uint8 nOut;
        uint256 pos; // its transaction position (blknum·1e9 + txIndex·1e4) once included, else 0
        bool honest; // signed by an honest owner (who never double spends)
    }

    InFlightExitGame public ife;

    Out[] internal outs;
    PTx[] internal txs;
    mapping(uint256 utxoPos => uint256 outIdx) internal outAtPos;
    mapping(uint256 exitId => uint256 txIdx) internal txOfExit;

    address internal watcher;
    address internal processor;
    address[7] internal accounts; // every account that can be credited
    uint256[4] internal keys;

    // ---- ghosts
    uint256 public ghostDeposited;
    uint256 public ghostEthIn; // deposits and bonds sent
    uint256 public ghostWithdrawn;
    uint256 public ghostBondsIn;
    /// Bond wei not accounted for: Δ(held by the games) + Δ(bond credits) − bonds sent, summed over
    /// every action (0 when bonds are conserved).
    int256 public ghostBondImbalance;
    bytes32 public firstImbalanceAt; // the first action that did not balance
    uint256 public ghostPaidTwice; // outputs paid more than once
    uint256 public ghostUnexpectedPayout; // processings whose payout differed from the settlement rule
    uint256 public ghostMalloryBudget; // value mallory legitimately received
    uint256 public ghostMalloryBondsIn;
    /// Piggybacks challenged away (CHAL-3, CHAL-4): half of each bond is burned (BOND-1).
    uint256 public ghostPiggybacksChallenged;
    /// Calls by honest users or the watcher that reverted: each is a protocol step the rules allow
    /// that the contracts refused.
    uint256 public ghostHonestFailures;
    bytes public lastHonestFailure;
    mapping(address => uint256) public ghostWithdrawnBy;
    mapping(uint256 lineage => uint256) internal lineagePaid;
    uint256[] internal deposits; // out indexes of deposits

    /// What the run exercised: successful protocol steps by name (see `_did`).
    mapping(bytes32 step => uint256) public done;

    constructor() {
        setUp();
        (watcher,) = makeAccount("watcher");
        (processor,) = makeAccount("processor");
        vm.deal(watcher, 1000 ether);
        vm.deal(processor, 1000 ether);
        accounts = [alice, bob, carol, mallory, watcher, processor, operator];
        keys = [aliceKey, bobKey, carolKey, malloryKey];
    }

    function _deployInFlightGame() internal override returns (address) {
        ife = new InFlightExitGame(IPlasmaFramework(address(framework)), operator, IFE_BOND, PB_BOND);
        return address(ife);
    }

    // ---------------------------------------------------------------- bond bookkeeping

    /// @dev Every action: what the games hold plus what was credited as bonds (credits not from the
    /// vault's exits) changes by exactly the bonds sent in it.
    modifier accounted(bytes32 name) {
        uint256 before = _bondHoldings();
        uint256 bondsBefore = ghostBondsIn;
        _;
        int256 imbalance = int256(_bondHoldings()) - int256(before) - int256(ghostBondsIn - bondsBefore);
        if (imbalance != 0 && firstImbalanceAt == bytes32(0)) firstImbalanceAt = name;
        ghostBondImbalance += imbalance;
    }

    function _bondHoldings() internal view returns (uint256 sum) {
        sum = address(seGame).balance + address(ife).balance;
        for (uint256 a = 0; a < accounts.length; ++a) {
            sum += framework.withdrawable(accounts[a], address(0));
        }
        sum += ghostWithdrawn;
        sum -= framework.totalCredited(address(0)); // exits' payouts are not bonds
    }

    // ---------------------------------------------------------------- chain actions

    function deposit(uint256 actorSeed, uint256 amount) external accounted("deposit") {
        if (framework.nextDepositBlock() >= 400) return; // stay clear of deposit fees
        uint256 a = actorSeed % 4;
        amount = bound(amount, 1 ether, 50 ether);
        (uint256 pos, bytes memory txBytes) = _depositEth(accounts[a], amount);
        uint256 i = outs.length;
        _pushOut(accounts[a], keys[a], amount, txBytes, NONE, 0, pos, i);
        deposits.push(i);
        ghostDeposited += amount;
        ghostEthIn += amount;
        if (accounts[a] == mallory) ghostMalloryBudget += amount;
    }

    /// @dev The owner of an included output pays `to` (and keeps the change), included now or
    /// held in flight. Honest owners never spend an output twice or one they exit.
    function pay(uint256 outSeed, uint256 toSeed, uint256 amountSeed, bool inFlight) external accounted("pay") {
        uint256 o = _pickOut(outSeed, _canPay);
        if (o == NONE) return;
        Out storage u = outs[o];
        // The honest operator never includes a spend of an output exiting on L1 (LEDGER-9); mallory
        // may still sign one, which then stays in flight.
        if (_gone(o)) inFlight = true;
        _spend(o, toSeed % 4, bound(amountSeed, 1, u.amount), inFlight, u.owner != mallory);
    }

    /// @dev Mallory signs a second spend of one of her outputs, to herself. The honest operator
    /// includes it only if no included transaction spends that output yet.
    function doubleSpend(uint256 outSeed, bool inFlight) external accounted("doubleSpend") {
        uint256 o = _pickOut(outSeed, _canDoubleSpend);
        if (o == NONE) return;
        Out storage u = outs[o];
        if (!inFlight && (_includedSpend(o) != NONE || _gone(o))) inFlight = true;
        _spend(o, 3, u.amount, inFlight, false);
    }

    function _spend(uint256 o, uint256 to, uint256 amount, bool inFlight, bool honest) internal {
        Out storage u = outs[o];
        uint256[] memory ins = new uint256[](1);
        ins[0] = u.pos;
        uint256 change = u.amount - amount;
        PlasmaTx.Output[] memory os = new PlasmaTx.Output[](change == 0 ? 1 : 2);
        os[0] = _out(accounts[to], address(0), amount);
        if (change != 0) os[1] = _out(u.owner, address(0), change);
        // A distinct transaction even for equal spends: the metadata carries the tx count.
        bytes memory txBytes = abi.encode(PlasmaTx.Transaction(PlasmaTx.TYPE_PAYMENT, ins, os, bytes32(txs.length)));
        uint256 t = txs.length;
        uint256 pos;
        if (!inFlight) pos = UtxoPosLib.pack(_submit1(txBytes), 0, 0);
        txs.push(PTx(txBytes, o, outs.length, uint8(os.length), pos, honest));
        txOfExit[uint256(keccak256(txBytes))] = t;
        u.spentBy.push(t);
        uint256 lineage = u.lineage;
        for (uint256 j = 0; j < os.length; ++j) {
            uint256 idx = _indexOf(os[j].owner);
            _pushOut(os[j].owner, keys[idx], os[j].amount, txBytes, t, uint8(j), pos == 0 ? 0 : pos + j, lineage);
            if (os[j].owner == mallory && honest) ghostMalloryBudget += os[j].amount;
        }
        // What mallory pays honest users in an included transaction is theirs, no longer hers.
        if (!honest && !inFlight) {
            for (uint256 j = 0; j < os.length; ++j) {
                if (os[j].owner != mallory) ghostMalloryBudget -= _min(ghostMalloryBudget, os[j].amount);
            }
        }
    }

    // ---------------------------------------------------------------- exits

    /// @dev The input's owner starts the in-flight exit of any payment (honest or a double spend,
    /// included or not).
    function startInFlightExit(uint256 txSeed) external accounted("startIFE") {
        uint256 t = _pickTx(txSeed, _canStartIfe);
        if (t != NONE) _startIfe(t);
    }

    function piggybackOutput(uint256 txSeed, uint256 j) external accounted("piggybackOutput") {
        uint256 t = _pickTx(txSeed, _inPhaseOne);
        if (t == NONE) return;
        j = j % txs[t].nOut;
        Out storage o = outs[txs[t].firstOut + j];
        // Honest owners claim only outputs that are theirs to claim: not spent, not exiting.
        if (o.owner != mallory && (o.spentBy.length != 0 || (o.pos != 0 && _seStarted(o.pos)))) return;
        _piggyback(t, true, uint8(j), o.owner);
    }

    function piggybackInput(uint256 txSeed) external accounted("piggybackInput") {
        uint256 t = _pickTx(txSeed, _inPhaseOne);
        if (t == NONE) return;
        Out storage o = outs[txs[t].input];
        if (o.owner != mallory && _seStarted(o.pos)) return;
        _piggyback(t, false, 0, o.owner);
    }

    /// @dev Mallory piggybacks an output of hers that she already spent, starting the in-flight exit
    /// of its included transaction herself (as its output's owner, a party: EXIT-6) if need be, for
    /// CHAL-4; or an input she also spent elsewhere, for CHAL-3.
    function piggybackSpent(uint256 seed, bool output) external accounted("piggybackSpent") {
        if (output) {
            uint256 o = _pickOut(seed, _spentMalloryOutputOfIncludedTx);
            if (o == NONE) return;
            uint256 created = outs[o].txIdx;
            if (_canStartIfe(created)) _startIfeAs(created, mallory);
            if (_inPhaseOne(created)) _piggyback(created, true, outs[o].oindex, mallory);
            return;
        }
        uint256 t = _pickTx(seed, _hasDoubleSpentMalloryInput);
        if (t != NONE) _piggyback(t, false, 0, mallory);
    }

    /// @dev Mallory tries to be paid twice for an output already paid (finalized): she signs a new
    /// spend of it (kept in flight), exits that in flight and piggybacks the input.
    function malloryReexit(uint256 seed) external accounted("malloryReexit") {
        uint256 o = _pickOut(seed, _paidMalloryOutput);
        if (o == NONE) return;
        uint256 t = txs.length;
        _spend(o, 3, outs[o].amount, true, false);
        if (_startIfe(t)) _piggyback(t, false, 0, mallory);
    }

    /// @dev Standard exit of an included output by its owner; mallory also exits spent ones.
    function startStandardExit(uint256 outSeed) external accounted("startSE") {
        uint256 o = _pickOut(outSeed, _canExit);
        if (o != NONE) _startSe(o);
    }

    /// @dev Anyone deletes an exit nobody piggybacked, after phase 1.
    function deleteInFlightExit(uint256 txSeed) external accounted("delete") {
        uint256 t = _pickTx(txSeed, _ifeOpen);
        if (t == NONE) return;
        uint256 id = uint256(keccak256(txs[t].txBytes));
        vm.prank(processor);
        try ife.deleteNonPiggybackedInFlightExit(id) {
            _did("delete");
        } catch {}
    }

    /// @dev The operator, handed an honest payment that it has not included yet, starts its
    /// in-flight exit while the honest parties expect inclusion (so nobody piggybacks), lets phase 1
    /// pass and deletes it (issue 12, item 3). The payment then stays withheld. EXIT-6 refuses a
    /// non-party's start, and a deleted exit frees the transaction; either way the parties can still
    /// exit it in flight.
    function operatorGrief(uint256 txSeed) external accounted("operatorGrief") {
        uint256 t = _pickTx(txSeed, _griefable);
        if (t == NONE || !_startIfeAs(t, operator)) return;
        uint256 id = uint256(keccak256(txs[t].txBytes));
        _did("griefStarted");
        _watch(); // the watcher stays on duty while time passes
        skip(PERIOD / 2);
        _watch();
        vm.prank(operator);
        try ife.deleteNonPiggybackedInFlightExit(id) {
            _did("griefDeleted");
        } catch {}
    }

    /// @dev Mallory sends the standing canonicity challenge again, to take the challenger's place.
    function stealChallenge(uint256 txSeed) external accounted("stealChallenge") {
        uint256 t = _pickTx(txSeed, _challengeable);
        if (t == NONE) return;
        (uint256 c, uint256 cPos) = _bestCompetitor(t);
        InFlightExitGame.CompetitorArgs memory ca = _competitorArgs(t, c, cPos);
        vm.prank(mallory);
        try ife.challengeInFlightExitNotCanonical(ca) {
            _did("stolenChallenge");
        } catch {}
    }

    /// @dev Honest users and the watcher do their duties, time passes, due exits are processed.
    function advance(uint256 secondsAhead, uint256 maxExits) external accounted("advance") {
        _duties();
        skip(bound(secondsAhead, 1, 2 * PERIOD));
        _duties();
        _processDue(bound(maxExits, 1, 8));
    }

    function withdraw(uint256 actorSeed) external accounted("withdraw") {
        address a = accounts[actorSeed % accounts.length];
        uint256 amount = framework.withdrawable(a, address(0));
        if (amount == 0) return;
        vm.prank(a);
        framework.withdraw(address(0));
        ghostWithdrawn += amount;
        ghostWithdrawnBy[a] += amount;
    }

    /// @dev The end of a run: every duty done, every exit due and processed.
    function drain() external accounted("drain") {
        for (uint256 o = 0; o < outs.length; ++o) {
            Out storage u = outs[o];
            if (u.owner == mallory || u.pos == 0 || u.spentBy.length != 0 || u.exiting) continue;
            _startSe(o);
        }
        _duties();
        skip(PERIOD / 2);
        _duties();
        for (uint256 t = 0; t < txs.length; ++t) {
            vm.prank(processor);
            try ife.deleteNonPiggybackedInFlightExit(uint256(keccak256(txs[t].txBytes))) {
                _did("delete");
            } catch {}
        }
        skip(3 * PERIOD);
        _processDue(type(uint256).max);
    }

    // ---------------------------------------------------------------- honest duties and the watcher

    function _duties() internal {
        // Honest senders exit their in-flight payments; honest owners piggyback their outputs.
        for (uint256 t = 0; t < txs.length; ++t) {
            PTx storage p = txs[t];
            if (!p.honest || p.pos != 0) continue;
            _startIfe(t);
            for (uint8 j = 0; j < p.nOut; ++j) {
                if (outs[p.firstOut + j].owner != mallory) _piggyback(t, true, j, outs[p.firstOut + j].owner);
            }
        }
        _watch();
    }

    /// @dev The perfect watcher (an honest third party).
    function _watch() internal {
        for (uint256 o = 0; o < outs.length; ++o) {
            Out storage u = outs[o];
            if (u.pos == 0 || u.spentBy.length == 0 || !_seActive(u.pos)) continue;
            bytes memory spend = txs[u.spentBy[0]].txBytes;
            bytes memory sig = _signTx(u.ownerKey, spend); // before the prank: signing reads the framework
            vm.prank(watcher);
            try seGame.challengeStandardExit(u.pos, spend, 0, sig) {
                _did("seChallenge");
            } catch (bytes memory err) {
                _failed(err);
            }
        }
        for (uint256 t = 0; t < txs.length; ++t) {
            _watchIfe(t);
        }
    }

    function _watchIfe(uint256 t) internal {
        uint256 id = uint256(keccak256(txs[t].txBytes));
        (, uint64 startedAt,,, uint16 piggybacks, bool nonCanonical, uint8 verdict,) = ife.inFlightExit(id);
        if (startedAt == 0 || verdict != 0) return;
        PTx storage p = txs[t];
        // CHAL-1 with the oldest competitor, while it beats what stands.
        (uint256 c, uint256 cPos) = _bestCompetitor(t);
        if (c != NONE && block.timestamp < uint256(startedAt) + PERIOD / 2) {
            (,,,,, uint256 standingComp, uint256 inclusion) = ife.inFlightExitDetails(id);
            uint256 mine = cPos == 0 ? type(uint96).max : cPos;
            uint256 standing = nonCanonical ? standingComp : inclusion;
            if (standing == 0 || mine < standing) {
                InFlightExitGame.CompetitorArgs memory ca = _competitorArgs(t, c, cPos);
                vm.prank(watcher);
                try ife.challengeInFlightExitNotCanonical(ca) {
                    nonCanonical = true;
                    _did(cPos == 0 ? bytes32("chal1NotIncluded") : bytes32("chal1Included"));
                } catch (bytes memory err) {
                    _failed(err);
                }
            }
        }
        // CHAL-2: an included in-flight transaction older than the standing competitor.
        if (nonCanonical && p.pos != 0) {
            (,,,,, uint256 standingComp,) = ife.inFlightExitDetails(id);
            if (p.pos < standingComp) {
                vm.prank(watcher);
                try ife.respondToNonCanonicalChallenge(id, p.txBytes, p.pos, _proof(_blk(p.pos), 0), _ts(p.pos)) {
                    _did("chal2Response");
                } catch (bytes memory err) {
                    _failed(err);
                }
            }
        }
        // CHAL-3: a piggybacked input spent elsewhere.
        Out storage input = outs[p.input];
        if (piggybacks & 1 != 0) {
            for (uint256 k = 0; k < input.spentBy.length; ++k) {
                uint256 s = input.spentBy[k];
                if (s == t) continue;
                bytes memory sig = _signTx(input.ownerKey, txs[s].txBytes);
                vm.prank(watcher);
                try ife.challengeInFlightExitInputSpent(id, 0, txs[s].txBytes, 0, sig) {
                    ++ghostPiggybacksChallenged;
                    _did("chal3InputSpent");
                } catch (bytes memory err) {
                    _failed(err);
                }
                break;
            }
        }
        // CHAL-4: a piggybacked output of an included transaction, spent.
        if (p.pos == 0) return;
        for (uint8 j = 0; j < p.nOut; ++j) {
            Out storage o = outs[p.firstOut + j];
            if (piggybacks & _bit(5 + j) == 0 || o.spentBy.length == 0) continue;
            bytes memory spend = txs[o.spentBy[0]].txBytes;
            InFlightExitGame.OutputSpentArgs memory a = InFlightExitGame.OutputSpentArgs(
                id, j, p.txBytes, p.pos, _proof(_blk(p.pos), 0), _ts(p.pos), spend, 0, _signTx(o.ownerKey, spend)
            );
            vm.prank(watcher);
            try ife.challengeInFlightExitOutputSpent(a) {
                ++ghostPiggybacksChallenged;
                _did("chal4OutputSpent");
            } catch (bytes memory err) {
                _failed(err);
            }
        }
    }

    /// @dev The oldest other spend of `t`'s input: an included one first (its position), else one in
    /// flight (position 0).
    function _bestCompetitor(uint256 t) internal view returns (uint256 best, uint256 bestPos) {
        best = NONE;
        uint256[] storage spends = outs[txs[t].input].spentBy;
        for (uint256 k = 0; k < spends.length; ++k) {
            uint256 s = spends[k];
            if (s == t) continue;
            uint256 sp = txs[s].pos;
            if (best == NONE || (sp != 0 && (bestPos == 0 || sp < bestPos))) (best, bestPos) = (s, sp);
        }
    }

    function _competitorArgs(uint256 t, uint256 c, uint256 cPos)
        internal
        view
        returns (InFlightExitGame.CompetitorArgs memory a)
    {
        Out storage input = outs[txs[t].input];
        a.exitId = uint256(keccak256(txs[t].txBytes));
        a.competingTx = txs[c].txBytes;
        a.competitorSignature = _signTx(input.ownerKey, txs[c].txBytes);
        if (cPos != 0) {
            a.competitorTxPos = cPos;
            a.competitorProof = _proof(_blk(cPos), 0);
            a.competitorBlockTimestamp = _ts(cPos);
        }
    }

    // ---------------------------------------------------------------- processing and attribution

    /// @dev Processes due exits one at a time, attributing each payout to the outputs it pays.
    function _processDue(uint256 maxExits) internal {
        for (uint256 n = 0; n < maxExits; ++n) {
            (uint256 head,) = framework.queueHead(address(0));
            if (head == 0 || ExitPriority.exitableAt(head) > block.timestamp) return;
            uint256 nonce = ExitPriority.nonce(head);
            uint256[] memory paid;
            uint256 ifeId;
            if (nonce & (uint256(1) << 63) != 0) {
                ifeId = framework.flaggedExitIds(uint64(nonce));
                paid = _ifePays(ifeId);
            } else {
                paid = _sePays(ExitPriority.position(head));
            }
            uint256 expected;
            for (uint256 k = 0; k < paid.length; ++k) {
                expected += outs[paid[k]].amount;
            }
            uint256 before = framework.totalCredited(address(0));
            vm.prank(processor);
            framework.processExits(address(0), head, 1);
            if (ifeId != 0) {
                (,,,,,, uint8 verdict,) = ife.inFlightExit(ifeId);
                _did(verdict == 1 ? bytes32("settledCanonical") : bytes32("settledNotCanonical"));
            } else {
                _did(paid.length != 0 ? bytes32("sePaid") : bytes32("seNotPaid"));
            }
            if (framework.totalCredited(address(0)) - before != expected) {
                ++ghostUnexpectedPayout;
                continue;
            }
            for (uint256 k = 0; k < paid.length; ++k) {
                Out storage o = outs[paid[k]];
                if (++o.paid > 1) ++ghostPaidTwice;
                lineagePaid[o.lineage] += o.amount;
            }
        }
    }

    function _sePays(uint256 pos) internal view returns (uint256[] memory paid) {
        uint256 o = outAtPos[pos];
        if (!_seActive(pos) || framework.isOutputFinalized(_outputId(o))) return paid;
        paid = new uint256[](1);
        paid[0] = o;
    }

    /// @dev The settlement rule (spec: EXIT-11): canonical iff no challenge stands and the input is
    /// not finalized; canonical pays piggybacked outputs, otherwise the piggybacked input; never an
    /// output already finalized.
    function _ifePays(uint256 id) internal view returns (uint256[] memory paid) {
        uint256 t = txOfExit[id];
        PTx storage p = txs[t];
        (,,,, uint16 piggybacks, bool nonCanonical, uint8 verdict,) = ife.inFlightExit(id);
        bool canonical = verdict == 0 ? !nonCanonical && !framework.isOutputFinalized(_outputId(p.input)) : verdict == 1;
        paid = new uint256[](5);
        uint256 n;
        if (canonical) {
            for (uint256 j = 0; j < p.nOut; ++j) {
                uint256 o = p.firstOut + j;
                if (piggybacks & _bit(5 + j) != 0 && !framework.isOutputFinalized(_outputId(o))) {
                    paid[n++] = o;
                }
            }
        } else if (piggybacks & 1 != 0 && !framework.isOutputFinalized(_outputId(p.input))) {
            paid[n++] = p.input;
        }
        assembly ("memory-safe") {
            mstore(paid, n)
        }
    }

    // ---------------------------------------------------------------- picking what to act on

    /// @dev The first output from `seed` on (cyclically) that `ok` accepts, or NONE.
    function _pickOut(uint256 seed, function(uint256) internal view returns (bool) ok) internal view returns (uint256) {
        uint256 n = outs.length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            if (ok(i)) return i;
        }
        return NONE;
    }

    function _pickTx(uint256 seed, function(uint256) internal view returns (bool) ok) internal view returns (uint256) {
        uint256 n = txs.length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            if (ok(i)) return i;
        }
        return NONE;
    }

    /// @dev Spendable by its owner: included and unspent; honest owners never spend what is exiting.
    /// In-flight outputs are not spent (their spends could not exit).
    function _canPay(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        if (u.pos == 0 || u.spentBy.length != 0) return false;
        // Mallory also signs spends of outputs she is exiting or was paid for (kept in flight).
        return u.owner == mallory || (!_seStarted(u.pos) && !_gone(o));
    }

    /// @dev Gone from the child chain (LEDGER-9): a standard exit or an output piggyback claimed it,
    /// an in-flight exit of a transaction spending it was started and not deleted, or it is
    /// finalized (OUT-2).
    function _gone(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        if (u.exiting || framework.isOutputFinalized(_outputId(o))) return true;
        for (uint256 k = 0; k < u.spentBy.length; ++k) {
            (, uint64 startedAt,,,,, uint8 verdict,) = ife.inFlightExit(uint256(keccak256(txs[u.spentBy[k]].txBytes)));
            if (startedAt != 0 && verdict != 3) return true;
        }
        return false;
    }

    function _paidMalloryOutput(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        return u.owner == mallory && u.pos != 0 && u.spentBy.length == 0 && u.paid != 0;
    }

    function _canDoubleSpend(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        return u.owner == mallory && u.pos != 0 && u.spentBy.length != 0;
    }

    /// @dev Standard-exitable by its owner: honest owners exit only what they neither spent nor
    /// piggybacked; mallory exits anything included.
    function _canExit(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        if (u.pos == 0 || _seStarted(u.pos)) return false;
        return u.owner == mallory || (u.spentBy.length == 0 && !u.exiting);
    }

    function _canStartIfe(uint256 t) internal view returns (bool) {
        (, uint64 startedAt,,,,, uint8 verdict,) = ife.inFlightExit(uint256(keccak256(txs[t].txBytes)));
        return startedAt == 0 || verdict == 3;
    }

    function _inPhaseOne(uint256 t) internal view returns (bool) {
        (, uint64 startedAt,,,,, uint8 verdict,) = ife.inFlightExit(uint256(keccak256(txs[t].txBytes)));
        return startedAt != 0 && verdict == 0 && block.timestamp < uint256(startedAt) + PERIOD / 2;
    }

    function _spentMalloryOutputOfIncludedTx(uint256 o) internal view returns (bool) {
        Out storage u = outs[o];
        return u.owner == mallory && u.spentBy.length != 0 && u.txIdx != NONE && txs[u.txIdx].pos != 0
            && !_piggybackedAnywhere(o);
    }

    function _hasDoubleSpentMalloryInput(uint256 t) internal view returns (bool) {
        Out storage input = outs[txs[t].input];
        return input.owner == mallory && input.spentBy.length > 1 && _inPhaseOne(t);
    }

    /// @dev An honest payment not included and not exiting yet.
    function _griefable(uint256 t) internal view returns (bool) {
        if (!txs[t].honest || txs[t].pos != 0) return false;
        (, uint64 startedAt,,,,,,) = ife.inFlightExit(uint256(keccak256(txs[t].txBytes)));
        return startedAt == 0;
    }

    function _challengeable(uint256 t) internal view returns (bool) {
        (uint256 c,) = _bestCompetitor(t);
        return c != NONE && _ifeOpen(t);
    }

    // ---------------------------------------------------------------- helpers

    /// @dev The input's owner starts (or, once deleted, restarts) `t`'s in-flight exit.
    function _startIfe(uint256 t) internal returns (bool) {
        return _startIfeAs(t, outs[txs[t].input].owner);
    }

    function _startIfeAs(uint256 t, address from) internal returns (bool started) {
        PTx storage p = txs[t];
        uint256 id = uint256(keccak256(p.txBytes));
        (, uint64 startedAt,,,,, uint8 verdict,) = ife.inFlightExit(id);
        if (startedAt != 0 && verdict != 3) return false; // open or settled
        Out storage input = outs[p.input];
        InFlightExitGame.StartArgs memory a;
        a.inFlightTx = p.txBytes;
        a.inputTxs = new bytes[](1);
        a.inputTxs[0] = input.txBytes;
        a.inputUtxoPos = new uint256[](1);
        a.inputUtxoPos[0] = input.pos;
        a.inputProofs = new bytes[](1);
        a.inputProofs[0] = _proof(_blk(input.pos), UtxoPosLib.txIndex(input.pos));
        a.inputBlockTimestamps = new uint64[](1);
        a.inputBlockTimestamps[0] = _ts(input.pos);
        a.signatures = new bytes[](1);
        a.signatures[0] = _signTx(input.ownerKey, p.txBytes);
        uint256 bond = ife.inFlightExitBond();
        _bondIn(from, bond);
        vm.prank(from);
        try ife.startInFlightExit{value: bond}(a) {
            _did(startedAt == 0 ? bytes32("ifeStart") : bytes32("ifeRestart"));
            started = true;
        } catch (bytes memory err) {
            _bondBack(from, bond);
            // An honest party may always start (EXIT-6: a deleted exit frees its transaction).
            if (from != mallory && from != operator) _failed(err);
        }
    }

    function _piggyback(uint256 t, bool isOutput, uint8 index, address owner) internal {
        uint256 id = uint256(keccak256(txs[t].txBytes));
        (, uint64 startedAt,,, uint16 piggybacks,, uint8 verdict, uint256 bond) = ife.inFlightExit(id);
        if (startedAt == 0 || verdict != 0 || block.timestamp >= uint256(startedAt) + PERIOD / 2) return;
        if (piggybacks & _bit(isOutput ? 5 + index : index) != 0) return;
        _bondIn(owner, bond);
        vm.prank(owner);
        bool ok;
        bytes memory err;
        if (isOutput) {
            try ife.piggybackOutput{value: bond}(id, index) {
                ok = true;
                outs[txs[t].firstOut + index].exiting = true;
                _did("piggybackOutput");
            } catch (bytes memory e) {
                err = e;
            }
        } else {
            try ife.piggybackInput{value: bond}(id, index) {
                ok = true;
                _did("piggybackInput");
            } catch (bytes memory e) {
                err = e;
            }
        }
        if (!ok) {
            _bondBack(owner, bond);
            if (owner != mallory) _failed(err);
        }
    }

    function _startSe(uint256 o) internal {
        Out storage u = outs[o];
        if (framework.isOutputFinalized(_outputId(o))) return;
        uint256 bond = seGame.bondSize();
        _bondIn(u.owner, bond);
        vm.prank(u.owner);
        try seGame.startStandardExit{value: bond}(_startArgs(u.pos, u.txBytes)) {
            _did(u.spentBy.length == 0 ? bytes32("seStart") : bytes32("seStartSpent"));
            u.exiting = true;
        } catch (bytes memory err) {
            _bondBack(u.owner, bond);
            if (u.owner != mallory) _failed(err);
        }
    }

    function _did(bytes32 step) internal {
        ++done[step];
    }

    function _failed(bytes memory err) internal {
        ++ghostHonestFailures;
        lastHonestFailure = err;
    }

    function _bondIn(address from, uint256 bond) internal {
        vm.deal(from, from.balance + bond);
        ghostBondsIn += bond;
        ghostEthIn += bond;
        if (from == mallory) ghostMalloryBondsIn += bond;
    }

    function _bondBack(address from, uint256 bond) internal {
        ghostBondsIn -= bond;
        ghostEthIn -= bond;
        if (from == mallory) ghostMalloryBondsIn -= bond;
    }

    function _pushOut(
        address owner,
        uint256 key,
        uint256 amount,
        bytes memory txBytes,
        uint256 txIdx,
        uint8 oindex,
        uint256 pos,
        uint256 lineage
    ) internal {
        outs.push();
        Out storage o = outs[outs.length - 1];
        o.owner = owner;
        o.ownerKey = key;
        o.amount = amount;
        o.txBytes = txBytes;
        o.txIdx = txIdx;
        o.oindex = oindex;
        o.pos = pos;
        o.lineage = lineage;
        if (pos != 0) outAtPos[pos] = outs.length - 1;
    }

    function _outputId(uint256 o) internal view returns (bytes32) {
        Out storage u = outs[o];
        return PlasmaTx.outputId(keccak256(u.txBytes), u.txIdx != NONE, u.oindex, u.pos);
    }

    function _includedSpend(uint256 o) internal view returns (uint256) {
        uint256[] storage spends = outs[o].spentBy;
        for (uint256 k = 0; k < spends.length; ++k) {
            if (txs[spends[k]].pos != 0) return spends[k];
        }
        return NONE;
    }

    function _seStarted(uint256 pos) internal view returns (bool) {
        (,, StandardExitGame.Status status,,,,,) = seGame.exits(pos);
        return status != StandardExitGame.Status.None;
    }

    function _seActive(uint256 pos) internal view returns (bool) {
        (,, StandardExitGame.Status status,,,,,) = seGame.exits(pos);
        return status == StandardExitGame.Status.Active;
    }

    function _ifeOpen(uint256 t) internal view returns (bool) {
        (, uint64 startedAt,,,,, uint8 verdict,) = ife.inFlightExit(uint256(keccak256(txs[t].txBytes)));
        return startedAt != 0 && verdict == 0;
    }

    /// @dev Whether output `o` is piggybacked as an output of the payment that created it.
    function _piggybackedAnywhere(uint256 o) internal view returns (bool) {
        uint256 t = outs[o].txIdx;
        if (t == NONE) return false;
        (,,,, uint16 piggybacks,,,) = ife.inFlightExit(uint256(keccak256(txs[t].txBytes)));
        return piggybacks & _bit(5 + outs[o].oindex) != 0;
    }

    /// @dev The piggyback bit `k` (input i: i, output j: 5 + j).
    function _bit(uint256 k) internal pure returns (uint16) {
        return uint16(1 << k);
    }

    function _blk(uint256 pos) internal pure returns (uint256) {
        return UtxoPosLib.blknum(pos);
    }

    function _ts(uint256 pos) internal view returns (uint64) {
        return blockTimestamp[UtxoPosLib.blknum(pos)];
    }

    function _indexOf(address a) internal view returns (uint256) {
        for (uint256 i = 0; i < 4; ++i) {
            if (accounts[i] == a) return i;
        }
        return 0;
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    // ---------------------------------------------------------------- audits (views for invariants)

    function fw() external view returns (PlasmaFramework) {
        return framework;
    }

    function se() external view returns (StandardExitGame) {
        return seGame;
    }

    function account(uint256 i) external view returns (address) {
        return accounts[i];
    }

    function nAccounts() external view returns (uint256) {
        return accounts.length;
    }

    /// @dev Sum over deposits of what their lineage was paid beyond the deposit (0 if none).
    function lineageExcess() external view returns (uint256 excess) {
        for (uint256 k = 0; k < deposits.length; ++k) {
            Out storage d = outs[deposits[k]];
            uint256 p = lineagePaid[deposits[k]];
            if (p > d.amount) excess += p - d.amount;
        }
    }

    /// @dev What honest users are owed in all, and what of it was paid: every output an honest user
    /// owns, created by a deposit, an included payment or an honest in-flight payment, not spent.
    function auditHonest() external view returns (uint256 owed, uint256 paid, uint256 unpaidOutputs) {
        for (uint256 o = 0; o < outs.length; ++o) {
            Out storage u = outs[o];
            if (u.owner == mallory || u.spentBy.length != 0) continue;
            if (u.txIdx != NONE && txs[u.txIdx].pos == 0 && !txs[u.txIdx].honest) continue;
            owed += u.amount;
            if (u.paid != 0) paid += u.amount;
            else ++unpaidOutputs;
        }
    }

    /// @dev What the in-flight game must still hold once everything is settled: the burned half of
    /// every defeated bond (BOND-1) — each piggyback challenged away, and each exit settled with a
    /// canonicity challenge standing.
    function ifeBurned() external view returns (uint256 burned) {
        burned = ghostPiggybacksChallenged * (PB_BOND - PB_BOND / 2);
        for (uint256 t = 0; t < txs.length; ++t) {
            (,,,,, bool nonCanonical, uint8 verdict,) = ife.inFlightExit(uint256(keccak256(txs[t].txBytes)));
            if (verdict == 2 && nonCanonical) burned += IFE_BOND - IFE_BOND / 2;
        }
    }

    /// @dev Everything mallory was ever credited (exits, bonds, bounties).
    function malloryTotal() external view returns (uint256) {
        return framework.withdrawable(mallory, address(0)) + ghostWithdrawnBy[mallory];
    }

    function counts() external view returns (uint256 nOuts, uint256 nTxs) {
        return (outs.length, txs.length);
    }
}
