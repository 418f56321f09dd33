//! Amounts and addresses as people type them, parsed once and strictly.
//!
//! An amount is a plain decimal number with an optional unit: `1.5`, `1.5eth`, `1.5 ether`,
//! `20gwei`, `7wei`. Without a unit it is in the default unit the caller gives: ether for ETH,
//! the token's own unit (its `decimals()`) for an ERC-20. Everything else is refused before
//! anything is signed or sent: a sign (`-1` would wrap to 2^256 − 1e18 wei in a naive parser),
//! exponents, separators, more fractional digits than the unit has (19 decimals of ether are not
//! silently rounded to 0), values past 2^256 − 1 and, for amounts (not fees), zero.
//!
//! An address with mixed-case hex must carry a valid EIP-55 checksum: a typo in a checksummed
//! address is caught instead of sending to a stranger. All-lowercase or all-uppercase hex carries
//! no checksum and is taken as written.

use alloy::primitives::{Address, U256};

/// The unit of an amount without a suffix, or named by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// 1 wei (ETH's base unit).
    Wei,
    /// 10^9 wei.
    Gwei,
    /// 10^18 wei.
    Ether,
    /// A token's whole unit: 10^`decimals` base units (the token's `decimals()`).
    Token {
        /// The token's decimals.
        decimals: u8,
    },
}

impl Unit {
    /// How many decimals of the base unit the unit has.
    pub const fn decimals(self) -> u8 {
        match self {
            Self::Wei => 0,
            Self::Gwei => 9,
            Self::Ether => 18,
            Self::Token { decimals } => decimals,
        }
    }

    /// Whether the unit is one of ETH's.
    pub const fn is_eth(self) -> bool {
        !matches!(self, Self::Token { .. })
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Wei => f.write_str("wei"),
            Self::Gwei => f.write_str("gwei"),
            Self::Ether => f.write_str("ether"),
            Self::Token { decimals } => write!(f, "token units ({decimals} decimals)"),
        }
    }
}

/// Why an amount was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing given.
    #[error("an amount is required")]
    Empty,
    /// A minus sign (or any sign).
    #[error("amount `{0}`: negative amounts are refused")]
    Negative(String),
    /// Zero (or a value that is zero in the base unit) where a positive amount is needed.
    #[error("amount `{0}` is zero: nothing would be moved")]
    Zero(String),
    /// Not a plain decimal number with an optional unit.
    #[error("amount `{given}`: {why}")]
    Malformed {
        /// As given.
        given: String,
        /// What is wrong with it.
        why: String,
    },
    /// A unit the amount cannot take (an ETH unit on a token amount, or an unknown one).
    #[error("amount `{given}`: unknown or inapplicable unit `{unit}` ({hint})")]
    BadUnit {
        /// As given.
        given: String,
        /// The unit given.
        unit: String,
        /// The units accepted here.
        hint: String,
    },
    /// More fractional digits than the unit has: the rest would be lost.
    #[error(
        "amount `{given}` has {digits} decimals but {unit} has {decimals}: it cannot be sent \
         exactly (round it yourself)"
    )]
    TooPrecise {
        /// As given.
        given: String,
        /// Fractional digits given.
        digits: usize,
        /// What the unit has.
        decimals: u8,
        /// The unit.
        unit: Unit,
    },
    /// Larger than 2^256 − 1 in the base unit.
    #[error("amount `{0}` is too large (more than 2^256 − 1 base units)")]
    Overflow(String),
}

/// Why an address was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `0x` followed by 40 hex digits.
    #[error("`{given}` is not an address (0x followed by 40 hex digits): {why}")]
    Malformed {
        /// As given.
        given: String,
        /// What is wrong with it.
        why: String,
    },
    /// Mixed-case hex whose EIP-55 checksum does not match: most likely a typo.
    #[error(
        "address `{given}` has a wrong EIP-55 checksum (mixed case must spell {expected}): a \
         typo? Check it, or give it all in lowercase to skip the check"
    )]
    BadChecksum {
        /// As given.
        given: String,
        /// The checksummed spelling of the same 20 bytes.
        expected: String,
    },
}

/// Parses an amount that may be zero (a fee): see the module docs. `default_unit` applies when
/// no unit is written; for a token it is the only unit accepted.
pub fn parse_value(s: &str, default_unit: Unit) -> Result<U256, AmountError> {
    let given = s.trim();
    if given.is_empty() {
        return Err(AmountError::Empty);
    }
    if given.starts_with('-') || given.starts_with('\u{2212}') {
        return Err(AmountError::Negative(given.to_owned()));
    }
    let malformed = |why: &str| AmountError::Malformed { given: given.to_owned(), why: why.into() };
    if given.starts_with('+') {
        return Err(malformed("no sign is allowed"));
    }
    let split = given.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(given.len());
    let (number, suffix) = given.split_at(split);
    let unit = match suffix.trim().to_ascii_lowercase().as_str() {
        "" => default_unit,
        u if default_unit.is_eth() => match u {
            "eth" | "ether" => Unit::Ether,
            "gwei" => Unit::Gwei,
            "wei" => Unit::Wei,
            _ => return Err(bad_unit(given, suffix.trim(), default_unit)),
        },
        _ => return Err(bad_unit(given, suffix.trim(), default_unit)),
    };
    if number.is_empty() {
        return Err(malformed("no digits"));
    }
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac.contains('.') {
        return Err(malformed("more than one decimal point"));
    }
    if int.is_empty() && frac.is_empty() {
        return Err(malformed("no digits"));
    }
    let decimals = unit.decimals();
    if frac.len() > usize::from(decimals) {
        // Trailing zeros carry no precision: 1.50000000000000000000 ether is 1.5 ether.
        if frac[usize::from(decimals)..].bytes().any(|b| b != b'0') {
            return Err(AmountError::TooPrecise {
                given: given.to_owned(),
                digits: frac.trim_end_matches('0').len(),
                decimals,
                unit,
            });
        }
    }
    let frac = &frac[..frac.len().min(usize::from(decimals))];
    let overflow = || AmountError::Overflow(given.to_owned());
    let digits = format!("{int}{frac:0<width$}", width = usize::from(decimals));
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(U256::ZERO);
    }
    if digits.len() > 78 {
        return Err(overflow());
    }
    U256::from_str_radix(digits, 10).map_err(|_| overflow())
}

fn bad_unit(given: &str, unit: &str, default_unit: Unit) -> AmountError {
    AmountError::BadUnit {
        given: given.to_owned(),
        unit: unit.to_owned(),
        hint: if default_unit.is_eth() {
            "eth, ether, gwei or wei".into()
        } else {
            "a token amount is written in the token's units, without a suffix".into()
        },
    }
}

/// Parses an amount to move (a deposit, a payment): as [`parse_value`], and zero is refused.
pub fn parse_amount(s: &str, default_unit: Unit) -> Result<U256, AmountError> {
    let v = parse_value(s, default_unit)?;
    if v.is_zero() {
        return Err(AmountError::Zero(s.trim().to_owned()));
    }
    Ok(v)
}

/// `v` base units as a decimal number of a unit with `decimals` decimals, without trailing
/// zeros (`1500000000000000000`, 18 → `1.5`): what [`parse_value`] reads back exactly.
pub fn format_units(v: U256, decimals: u8) -> String {
    let digits = v.to_string();
    let d = usize::from(decimals);
    if d == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { int.to_owned() } else { format!("{int}.{frac}") }
}

/// `v` base units for people: [`format_units`] and the symbol (`1.5 ETH`); no symbol when
/// `symbol` is empty.
pub fn format_amount(v: U256, decimals: u8, symbol: &str) -> String {
    let n = format_units(v, decimals);
    if symbol.is_empty() { n } else { format!("{n} {symbol}") }
}

/// Parses an address: `0x` and 40 hex digits; mixed case must be a valid EIP-55 checksum.
pub fn parse_address(s: &str) -> Result<Address, AddressError> {
    let given = s.trim();
    let malformed =
        |why: &str| AddressError::Malformed { given: given.to_owned(), why: why.into() };
    let Some(hex) = given.strip_prefix("0x").or_else(|| given.strip_prefix("0X")) else {
        return Err(malformed("it must start with 0x"));
    };
    if hex.len() != 40 {
        return Err(malformed(&format!("{} hex digits", hex.len())));
    }
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("not hex"));
    }
    let address: Address = hex.parse().map_err(|e| malformed(&format!("{e}")))?;
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        let expected = address.to_checksum(None);
        if expected[2..] != *hex {
            return Err(AddressError::BadChecksum { given: given.to_owned(), expected });
        }
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ETH: Unit = Unit::Ether;

    fn wei(n: u128) -> U256 {
        U256::from(n)
    }

    #[test]
    fn amounts_with_units() {
        assert_eq!(parse_amount("1.5", ETH).unwrap(), wei(1_500_000_000_000_000_000));
        assert_eq!(parse_amount("1.5eth", Unit::Wei).unwrap(), wei(1_500_000_000_000_000_000));
        assert_eq!(parse_amount(" 1.5 ETHER ", ETH).unwrap(), wei(1_500_000_000_000_000_000));
        assert_eq!(parse_amount("20gwei", ETH).unwrap(), wei(20_000_000_000));
        assert_eq!(parse_amount("7wei", ETH).unwrap(), wei(7));
        assert_eq!(parse_amount(".5", ETH).unwrap(), wei(500_000_000_000_000_000));
        assert_eq!(parse_amount("2.", ETH).unwrap(), wei(2_000_000_000_000_000_000));
        assert_eq!(parse_amount("0.000000000000000001", ETH).unwrap(), wei(1));
        assert_eq!(parse_amount("1.50000000000000000000", ETH).unwrap(), wei(15 * 10u128.pow(17)));
        assert_eq!(parse_amount("12.34", Unit::Token { decimals: 2 }).unwrap(), wei(1234));
        assert_eq!(parse_amount("300", Unit::Token { decimals: 0 }).unwrap(), wei(300));
        assert_eq!(parse_value("0", ETH).unwrap(), U256::ZERO);
        assert_eq!(parse_value("0gwei", ETH).unwrap(), U256::ZERO);
        let max = U256::MAX.to_string();
        assert_eq!(parse_amount(&format!("{max}wei"), ETH).unwrap(), U256::MAX);
    }

    #[test]
    fn refusals() {
        use AmountError as E;
        assert!(matches!(parse_amount("-1", ETH), Err(E::Negative(_))));
        assert!(matches!(parse_amount(" -0.5eth", ETH), Err(E::Negative(_))));
        assert!(matches!(parse_value("-0", ETH), Err(E::Negative(_))));
        assert!(matches!(parse_amount("0", ETH), Err(E::Zero(_))));
        assert!(matches!(parse_amount("0.000", ETH), Err(E::Zero(_))));
        assert!(matches!(parse_amount("", ETH), Err(E::Empty)));
        assert!(matches!(
            parse_amount("0.0000000000000000001", ETH),
            Err(E::TooPrecise { digits: 19, decimals: 18, .. })
        ));
        assert!(matches!(parse_amount("1.5wei", ETH), Err(E::TooPrecise { decimals: 0, .. })));
        assert!(matches!(
            parse_amount("1.001", Unit::Token { decimals: 2 }),
            Err(E::TooPrecise { .. })
        ));
        let too_big = format!("{}0wei", U256::MAX);
        assert!(matches!(parse_amount(&too_big, ETH), Err(E::Overflow(_))));
        let max_plus_one =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(matches!(parse_amount(&format!("{max_plus_one}wei"), ETH), Err(E::Overflow(_))));
        assert!(matches!(parse_amount(&"9".repeat(200), ETH), Err(E::Overflow(_))));
        assert!(matches!(parse_amount("1e18", ETH), Err(E::BadUnit { .. })));
        assert!(matches!(parse_amount("1,5", ETH), Err(E::BadUnit { .. })));
        assert!(matches!(
            parse_amount("1.5eth", Unit::Token { decimals: 18 }),
            Err(E::BadUnit { .. })
        ));
        assert!(matches!(parse_amount("1..5", ETH), Err(E::Malformed { .. })));
        assert!(matches!(parse_amount("1.2.3", ETH), Err(E::Malformed { .. })));
        assert!(matches!(parse_amount(".", ETH), Err(E::Malformed { .. })));
        assert!(matches!(parse_amount("eth", ETH), Err(E::Malformed { .. })));
        assert!(matches!(parse_amount("+1", ETH), Err(E::Malformed { .. })));
        let e = parse_amount("0.0000000000000000001", ETH).unwrap_err().to_string();
        assert!(e.contains("19 decimals") && e.contains("18"), "{e}");
    }

    #[test]
    fn formatting() {
        assert_eq!(format_amount(wei(1_500_000_000_000_000_000), 18, "ETH"), "1.5 ETH");
        assert_eq!(format_amount(wei(1), 18, "ETH"), "0.000000000000000001 ETH");
        assert_eq!(format_amount(U256::ZERO, 18, "ETH"), "0 ETH");
        assert_eq!(format_amount(wei(1234), 2, "TT"), "12.34 TT");
        assert_eq!(format_amount(wei(300), 0, ""), "300");
        assert_eq!(format_units(wei(10u128.pow(18) * 25), 18), "25");
    }

    #[test]
    fn addresses() {
        let good = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
        let a = parse_address(good).unwrap();
        assert_eq!(a.to_checksum(None), good);
        assert_eq!(parse_address(&good.to_lowercase()).unwrap(), a);
        assert_eq!(parse_address(&format!("0x{}", good[2..].to_uppercase())).unwrap(), a);
        // One letter's case flipped: a wrong checksum.
        let typo = "0x3c44CdDdB6a900fa2b585dd299e03d12FA4293BC";
        match parse_address(typo) {
            Err(AddressError::BadChecksum { expected, .. }) => assert_eq!(expected, good),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_address("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            Err(AddressError::Malformed { .. })
        ));
        assert!(matches!(parse_address("0x3C44"), Err(AddressError::Malformed { .. })));
        assert!(matches!(
            parse_address(&format!("{}zz", &good[..40])),
            Err(AddressError::Malformed { .. })
        ));
    }

    fn any_u256() -> impl Strategy<Value = U256> {
        prop_oneof![
            any::<u64>().prop_map(U256::from),
            any::<u128>().prop_map(U256::from),
            any::<[u8; 32]>().prop_map(U256::from_be_bytes),
        ]
    }

    proptest! {
        #[test]
        fn parse_reads_back_what_format_writes(v in any_u256(), decimals in 0u8..=36) {
            let unit = Unit::Token { decimals };
            prop_assert_eq!(parse_value(&format_units(v, decimals), unit).unwrap(), v);
            prop_assert_eq!(parse_value(&format_units(v, 18), ETH).unwrap(), v);
            prop_assert_eq!(parse_value(&format_amount(v, 18, "ETH"), ETH).unwrap(), v);
            prop_assert_eq!(parse_value(&format!("{v}wei"), ETH).unwrap(), v);
        }

        #[test]
        fn format_writes_back_what_parse_reads(int in 0u64.., frac in "[0-9]{0,18}") {
            let s = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
            let v = parse_value(&s, ETH).unwrap();
            // The canonical spelling: no leading zeros, no trailing fractional zeros.
            let canonical = {
                let f = frac.trim_end_matches('0');
                if f.is_empty() { int.to_string() } else { format!("{int}.{f}") }
            };
            prop_assert_eq!(format_units(v, 18), canonical);
        }

        #[test]
        fn over_precise_is_always_refused(v in 1u64.., extra in 1usize..6) {
            // One more significant digit than the unit has.
            let s = format!("0.{}{}", "0".repeat(18 + extra - 1), v % 9 + 1);
            let refused = matches!(parse_value(&s, ETH), Err(AmountError::TooPrecise { .. }));
            prop_assert!(refused);
        }

        #[test]
        fn checksums_round_trip_and_catch_case_flips(bytes in any::<[u8; 20]>(), i in 0usize..40) {
            let a = Address::from(bytes);
            let good = a.to_checksum(None);
            prop_assert_eq!(parse_address(&good).unwrap(), a);
            // Flip the case of one letter of a mixed-case spelling: a wrong checksum.
            let mut chars: Vec<char> = good[2..].chars().collect();
            let letters: Vec<usize> = (0..40).filter(|&j| chars[j].is_ascii_alphabetic()).collect();
            if letters.len() >= 2 {
                let j = letters[i % letters.len()];
                chars[j] = if chars[j].is_ascii_uppercase() { chars[j].to_ascii_lowercase() } else { chars[j].to_ascii_uppercase() };
                let flipped: String = chars.iter().collect();
                let mixed = flipped.chars().any(|c| c.is_ascii_lowercase()) && flipped.chars().any(|c| c.is_ascii_uppercase());
                let result = parse_address(&format!("0x{flipped}"));
                if mixed {
                    let bad_checksum = matches!(result, Err(AddressError::BadChecksum { .. }));
                    prop_assert!(bad_checksum, "{flipped}");
                } else {
                    prop_assert_eq!(result.unwrap(), a);
                }
            }
        }
    }
}
