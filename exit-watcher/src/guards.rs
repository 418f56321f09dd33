//! Which exit authorizations a watchtower keeps (spec: EXIT-9, WATCH-13). Pure: no I/O.
//!
//! An authorization lets the tower exit an owner's funds; keeping a useless one is how an owner
//! loses protection without noticing. So the tower refuses one that could not start an exit today
//! (expired, or a nonce that is not the owner's current one on L1), never lets an older one
//! replace a newer one (anyone holding an owner's old signed authorization could otherwise
//! downgrade that owner's protection), and drops those an owner revoked.

use alloy::primitives::{Address, U256};

use crate::watcher::Guard;

/// Why a guard was refused. Each has a stable code for the API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The signature does not recover to the owner (or does not recover at all).
    #[error("the authorization is not signed by {owner}: {reason}")]
    BadSignature {
        /// The claimed owner.
        owner: Address,
        /// Who signed, or why nothing recovered.
        reason: String,
    },
    /// Its deadline has passed on L1: no exit could start with it.
    #[error("the authorization expired at {deadline} (L1 time is {now})")]
    Expired {
        /// The deadline.
        deadline: U256,
        /// L1's latest block time.
        now: u64,
    },
    /// Its nonce is not the owner's current authorization nonce on L1 (revoked, or from the future).
    #[error("the authorization has nonce {nonce}, the owner's nonce on L1 is {current}")]
    StaleNonce {
        /// The authorization's nonce.
        nonce: U256,
        /// `authorizationNonce(owner)` on L1.
        current: U256,
    },
    /// The tower holds a newer authorization of this owner (higher nonce, or same nonce and a
    /// later deadline): replacing it would downgrade the owner's protection.
    #[error(
        "the watcher holds a newer authorization of this owner (nonce {nonce}, deadline {deadline})"
    )]
    Older {
        /// The kept authorization's nonce.
        nonce: U256,
        /// The kept authorization's deadline.
        deadline: U256,
    },
    /// The tower's balance cannot pay for one more owner's exit (WATCH-13).
    #[error("the watcher guards {guards} owners and its balance {balance} wei covers {capacity}")]
    AtCapacity {
        /// Owners guarded now.
        guards: u64,
        /// Owners the balance covers.
        capacity: u64,
        /// The tower's balance.
        balance: U256,
    },
    /// L1 or the store failed; nothing was kept.
    #[error("{0}")]
    Unavailable(String),
    /// This is a read-only monitor (`--monitor`, issue 20): it never sends an exit, so an
    /// authorization handed to it would protect no one. Refused rather than kept, so that the
    /// owner does not believe they are guarded.
    #[error(
        "this is a read-only monitor (--monitor): it guards no one and sends no L1 transaction; hand the authorization to a guarding watcher"
    )]
    MonitorOnly,
}

impl GuardError {
    /// The stable code the API reports.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadSignature { .. } => "BadAuthorization",
            Self::Expired { .. } => "AuthorizationExpired",
            Self::StaleNonce { .. } => "AuthorizationNonceStale",
            Self::Older { .. } => "AuthorizationOlder",
            Self::AtCapacity { .. } => "WatcherAtCapacity",
            Self::Unavailable(_) => "Unavailable",
            Self::MonitorOnly => "MonitorOnly",
        }
    }

    /// Whether the fault is the caller's (4xx) rather than the tower's (5xx).
    pub const fn is_client_error(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }
}

/// What L1 says about an owner when a guard arrives.
#[derive(Clone, Copy, Debug)]
pub struct OwnerOnL1 {
    /// `authorizationNonce(owner)`.
    pub nonce: U256,
    /// L1's latest block time.
    pub now: u64,
}

/// Checks `new` (whose signature was already recovered to `signer`) against L1 and the guard the
/// tower already keeps for the owner (spec: EXIT-9).
pub fn check(
    new: &Guard,
    signer: Address,
    l1: OwnerOnL1,
    kept: Option<&Guard>,
) -> Result<(), GuardError> {
    if signer != new.owner {
        return Err(GuardError::BadSignature {
            owner: new.owner,
            reason: format!("signed by {signer}"),
        });
    }
    if new.deadline < U256::from(l1.now) {
        return Err(GuardError::Expired { deadline: new.deadline, now: l1.now });
    }
    if new.nonce != l1.nonce {
        return Err(GuardError::StaleNonce { nonce: new.nonce, current: l1.nonce });
    }
    if let Some(kept) = kept
        && kept.nonce == l1.nonce
        && (kept.nonce, kept.deadline) > (new.nonce, new.deadline)
    {
        return Err(GuardError::Older { nonce: kept.nonce, deadline: kept.deadline });
    }
    Ok(())
}

/// Whether a kept guard is still usable: its nonce is the owner's current one and its deadline
/// has not passed. Revoked (`AuthorizationsRevoked`) or expired guards are dropped.
pub fn still_valid(kept: &Guard, l1: OwnerOnL1) -> bool {
    kept.nonce == l1.nonce && kept.deadline >= U256::from(l1.now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(nonce: u64, deadline: u64) -> Guard {
        Guard {
            owner: Address::repeat_byte(1),
            deadline: U256::from(deadline),
            nonce: U256::from(nonce),
            signature: Default::default(),
        }
    }

    const L1: OwnerOnL1 = OwnerOnL1 { nonce: U256::from_limbs([2, 0, 0, 0]), now: 1_000 };

    #[test]
    fn refuses_what_could_not_start_an_exit_today() {
        let owner = Address::repeat_byte(1);
        assert!(check(&guard(2, 5_000), owner, L1, None).is_ok());
        assert!(matches!(check(&guard(2, 999), owner, L1, None), Err(GuardError::Expired { .. })));
        assert!(matches!(
            check(&guard(1, 5_000), owner, L1, None),
            Err(GuardError::StaleNonce { .. })
        ));
        assert!(matches!(
            check(&guard(3, 5_000), owner, L1, None),
            Err(GuardError::StaleNonce { .. })
        ));
        let other = Address::repeat_byte(9);
        assert!(matches!(
            check(&guard(2, 5_000), other, L1, None),
            Err(GuardError::BadSignature { .. })
        ));
    }

    #[test]
    fn never_downgrades_a_kept_authorization() {
        let owner = Address::repeat_byte(1);
        let kept = guard(2, 9_000);
        assert!(matches!(
            check(&guard(2, 5_000), owner, L1, Some(&kept)),
            Err(GuardError::Older { .. })
        ));
        assert!(check(&guard(2, 9_500), owner, L1, Some(&kept)).is_ok(), "a later deadline");
        // A kept guard that L1 revoked is no reason to refuse the current one.
        assert!(check(&guard(2, 5_000), owner, L1, Some(&guard(1, 99_999))).is_ok());
        assert!(!still_valid(&guard(1, 99_999), L1));
        assert!(!still_valid(&guard(2, 999), L1));
        assert!(still_valid(&guard(2, 1_000), L1));
    }
}
