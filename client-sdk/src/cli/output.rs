//! What the `plasma` binary prints: JSON for scripts (`--json`, or stdout not a terminal), text
//! for people on a terminal, and the pieces the text is made of (amounts in units with their
//! token, times as dates and "in 2m").

use alloy::primitives::{Address, U256};
use plasma_sdk::{ProofStore, SdkError, TokenInfo, Wallet, units};
use serde_json::Value;
use std::{
    collections::HashMap,
    io::IsTerminal,
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

/// How the answer is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// One line of JSON (`--json`).
    Json,
    /// Indented JSON: stdout is not a terminal and no format was asked for (as before text
    /// output existed, so scripts piping `plasma` keep working).
    Pretty,
    /// Text for people (a terminal, or `--human`).
    Human,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Chooses the format once, from the flags and whether stdout is a terminal.
pub(crate) fn choose(json: bool, human: bool) -> Format {
    let f = if json {
        Format::Json
    } else if human || std::io::stdout().is_terminal() {
        Format::Human
    } else {
        Format::Pretty
    };
    *FORMAT.get_or_init(|| f)
}

/// Whether notes for people go to stderr (JSON on stdout) rather than into the text.
pub(crate) fn notes_on_stderr() -> bool {
    FORMAT.get().copied().unwrap_or(Format::Pretty) != Format::Human
}

/// A command's answer: the JSON scripts read and the text people read.
#[derive(Debug)]
pub(crate) struct Report {
    /// The JSON document (shapes as before text output; positions and amounts decimal strings).
    pub(crate) json: Value,
    /// The text.
    pub(crate) text: String,
}

impl Report {
    pub(crate) fn new(json: Value, text: impl Into<String>) -> Self {
        Self { json, text: text.into() }
    }
}

/// A JSON answer with no text of its own: people see it indented.
impl From<Value> for Report {
    fn from(json: Value) -> Self {
        let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string());
        Self { json, text }
    }
}

/// Prints `report` in `format`.
pub(crate) fn print(report: &Report, format: Format) {
    match format {
        Format::Json => println!("{}", report.json),
        Format::Pretty => println!(
            "{}",
            serde_json::to_string_pretty(&report.json).unwrap_or_else(|_| report.json.to_string())
        ),
        Format::Human => println!("{}", report.text.trim_end()),
    }
}

/// Decimals and symbols of the tokens an answer names, from the store or L1.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    known: HashMap<Address, TokenInfo>,
}

impl Tokens {
    /// ETH only.
    pub(crate) fn new() -> Self {
        let mut known = HashMap::new();
        known.insert(Address::ZERO, TokenInfo { decimals: 18, symbol: "ETH".into() });
        Self { known }
    }

    /// What `token` says of itself: kept in the store, else read from L1 (`decimals()`,
    /// `symbol()`) and kept. A token without `decimals()` is refused: its amounts cannot be
    /// read or written safely.
    pub(crate) async fn learn(
        &mut self,
        wallet: &Wallet,
        token: Address,
    ) -> Result<TokenInfo, SdkError> {
        if let Some(i) = self.known.get(&token) {
            return Ok(i.clone());
        }
        if let Some(i) = wallet.store().token_info(token)? {
            self.known.insert(token, i.clone());
            return Ok(i);
        }
        let erc20 = plasma_contracts::TestToken::new(token, wallet.provider().clone());
        let decimals = erc20.decimals().call().await.map_err(|e| {
            SdkError::Config(format!(
                "token {token} does not answer decimals() ({}): is it an ERC-20 on this chain?",
                plasma_contracts::sender::describe(&e)
            ))
        })?;
        // symbol() is optional in ERC-20.
        let symbol = erc20.symbol().call().await.unwrap_or_default();
        let info = TokenInfo { decimals, symbol };
        wallet.store().put_token_info(token, &info)?;
        tracing::debug!(%token, decimals, "token metadata read from L1");
        self.known.insert(token, info.clone());
        Ok(info)
    }

    /// What the store kept of `token`, without L1.
    pub(crate) fn learn_offline(&mut self, store: &ProofStore, token: Address) {
        if !self.known.contains_key(&token)
            && let Ok(Some(i)) = store.token_info(token)
        {
            self.known.insert(token, i);
        }
    }

    /// Learns every token of `tokens` (errors leave a token in base units).
    pub(crate) async fn learn_all(
        &mut self,
        wallet: &Wallet,
        tokens: impl IntoIterator<Item = Address>,
    ) {
        for t in tokens {
            if let Err(e) = self.learn(wallet, t).await {
                tracing::warn!(token = %t, error = %e, "token metadata unavailable");
            }
        }
    }

    /// `v` of `token` for people: `1.5 ETH`, `12.3 TT (0x5fbdb2…0aa3)`, or base units with the
    /// token's address when its decimals are not known. A token other than ether always shows
    /// (part of) its address next to its symbol, and never as a bare "ETH": `symbol()` is
    /// whatever the token's deployer chose (see [`token_label`]).
    pub(crate) fn fmt(&self, token: Address, v: U256) -> String {
        match self.known.get(&token) {
            Some(i) => {
                format!("{} {}", units::format_units(v, i.decimals), token_label(token, &i.symbol))
            }
            None => format!("{v} base units of token {token}"),
        }
    }

    /// The token's name for people: "ETH" for ether, else its symbol (as [`token_label`] shows
    /// it) and its full address.
    pub(crate) fn name(&self, token: Address) -> String {
        if token == Address::ZERO {
            return "ETH".into();
        }
        let symbol = self.known.get(&token).map(|i| i.symbol.as_str()).unwrap_or_default();
        match safe_symbol(symbol) {
            Some(s) => format!("{s} ({token})"),
            None if symbol.is_empty() => format!("token {token}"),
            None => format!("token {token} (calls itself {:?}; not ether)", printable(symbol)),
        }
    }
}

/// How many characters of a token's symbol are shown (the rest is cut with `…`).
const MAX_SYMBOL_CHARS: usize = 16;

/// `symbol` with control and formatting characters removed (a symbol could otherwise move the
/// cursor or fake a line break) and cut to [`MAX_SYMBOL_CHARS`].
fn printable(symbol: &str) -> String {
    let clean: String = symbol
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'))
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > MAX_SYMBOL_CHARS {
        format!("{}…", clean.chars().take(MAX_SYMBOL_CHARS).collect::<String>())
    } else {
        clean.to_owned()
    }
}

/// A token's own symbol if it may be shown as one: printable, not empty, and not ether's name
/// ("ETH" in any case, with any spacing or punctuation: a token calling itself so would print as
/// ether). `None` otherwise.
fn safe_symbol(symbol: &str) -> Option<String> {
    let s = printable(symbol);
    let letters: String = s.chars().filter(|c| c.is_alphanumeric()).collect();
    (!s.is_empty()
        && !letters.eq_ignore_ascii_case("eth")
        && !letters.eq_ignore_ascii_case("ether"))
    .then_some(s)
}

/// `0x5fbdb2…0aa3`: the first six and last four hex digits of an address.
pub(crate) fn short_address(a: Address) -> String {
    let hex = a.to_checksum(None);
    format!("{}…{}", &hex[..8], &hex[hex.len() - 4..])
}

/// What follows an amount of `token`: "ETH" for ether only; any other token is named by its
/// symbol *and* its short address (`TT (0x5fbdb2…0aa3)`), so a token cannot pass for another
/// by its `symbol()` alone, and a symbol that spells ether is never shown bare
/// (`token 0x5fbdb2…0aa3 ("ETH", not ether)`).
pub(crate) fn token_label(token: Address, symbol: &str) -> String {
    if token == Address::ZERO {
        return "ETH".into();
    }
    let short = short_address(token);
    match safe_symbol(symbol) {
        Some(s) => format!("{s} ({short})"),
        None if printable(symbol).is_empty() => format!("(token {short})"),
        None => format!("(token {short}, calls itself {:?}, not ether)", printable(symbol)),
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `secs` as `1h 2m`, `2m 30s`, `45s`.
pub(crate) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let rem = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A time relative to now: `2026-12-02 16:40:00 UTC (in 2m 30s)` or `(… ago)`.
pub(crate) fn when(at: u64, now: u64) -> String {
    if at > now {
        format!("{} (in {})", utc(at), duration(at - now))
    } else {
        format!("{} ({} ago)", utc(at), duration(now - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_for_people() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_227_200), "2026-12-02 16:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(150), "2m 30s");
        assert_eq!(duration(3_720), "1h 2m");
        assert_eq!(duration(90_000), "1d 1h");
        assert_eq!(when(1_000, 900), format!("{} (in 1m 40s)", utc(1_000)));
        assert_eq!(when(900, 1_000), format!("{} (1m 40s ago)", utc(900)));
    }

    #[test]
    fn amounts_for_people() {
        let t = Tokens::new();
        assert_eq!(
            t.fmt(Address::ZERO, U256::from(15u64) * U256::from(10u64).pow(U256::from(17))),
            "1.5 ETH"
        );
        let other = Address::repeat_byte(7);
        assert!(t.fmt(other, U256::from(5)).starts_with("5 base units of token 0x0707"));
    }

    /// audit18 F9: a token's `symbol()` is its deployer's choice; one calling itself "ETH" must
    /// not print as ether, and every other token shows its address next to its symbol.
    #[test]
    fn a_token_never_passes_for_ether_by_its_symbol() {
        let fake = Address::repeat_byte(0xab);
        let short = short_address(fake);
        assert_eq!(short, "0xABaBaB…ABaB");
        let mut t = Tokens::new();
        let hundred = U256::from(100u64) * U256::from(10u64).pow(U256::from(18));
        for symbol in ["ETH", "eth", " Eth ", "E.T.H", "ETH\u{200b}", "Ether", "\nETH"] {
            t.known.insert(fake, TokenInfo { decimals: 18, symbol: symbol.into() });
            let shown = t.fmt(fake, hundred);
            assert!(!shown.starts_with("100 ETH"), "{symbol:?}: {shown}");
            assert!(shown.contains(&short), "{symbol:?}: no address in {shown}");
            assert!(!shown.contains('\n'), "{symbol:?}: {shown:?}");
            assert!(shown.contains("not ether"), "{symbol:?}: {shown}");
            let name = t.name(fake);
            assert!(name.contains(&fake.to_string()) && name.contains("not ether"), "{name}");
            assert_ne!(name.trim(), "ETH");
        }
        t.known.insert(fake, TokenInfo { decimals: 18, symbol: "WETH".into() });
        assert_eq!(t.fmt(fake, hundred), format!("100 WETH ({short})"));
        assert_eq!(t.name(fake), format!("WETH ({fake})"));
        t.known.insert(fake, TokenInfo { decimals: 6, symbol: String::new() });
        assert_eq!(t.fmt(fake, U256::from(1_500_000u64)), format!("1.5 (token {short})"));
        t.known.insert(fake, TokenInfo { decimals: 0, symbol: "X".repeat(40) });
        assert!(t.fmt(fake, U256::from(1)).contains(&format!("{}… ({short})", "X".repeat(16))));
        // Ether itself is ETH, with no address.
        assert_eq!(t.fmt(Address::ZERO, hundred), "100 ETH");
        assert_eq!(t.name(Address::ZERO), "ETH");
    }
}
