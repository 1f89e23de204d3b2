//! Accounts and sessions: argon2id passwords, a TOTP second factor, server-side sessions, login throttling,
//! per-user rate limits. Pure functions over the store's spec'd tables (`users`, `sessions`); the handlers
//! are in `account.rs`.
//!
//! - Passwords: argon2id with the RustCrypto defaults (m = 19456 KiB, t = 2, p = 1), PHC strings; 8 to 64
//!   characters, not one of the commonest passwords.
//! - TOTP (RFC 6238: SHA-1, 6 digits, 30 s, one step of clock skew) for every role but enterprise; a code is
//!   accepted once (the step it matched is remembered per account, in memory).
//! - Sessions: 256 random bits in the cookie, only their SHA-256 stored; a CSRF token per session; idle and
//!   absolute timeouts; a new session at every login; logout and an administrator's disabling end them at once
//!   (every request reads its session from the store).

use crate::Error;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use xinyong_store::rows::{RowOp, RowQuery, Value};
use xinyong_store::Store;

/// The signed-in roles (the public needs no account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Enterprise,
    Bank,
    Department,
    Regulator,
    Admin,
    /// A natural person the platform holds data about (a legal representative, a shareholder): sees what is
    /// held about them and who read it, and objects.
    Person,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Enterprise,
        Role::Bank,
        Role::Department,
        Role::Regulator,
        Role::Admin,
        Role::Person,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::Enterprise => "enterprise",
            Role::Bank => "bank",
            Role::Department => "department",
            Role::Regulator => "regulator",
            Role::Admin => "admin",
            Role::Person => "person",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }

    /// Every role but the enterprise's logs in with a second factor (MLPS level 3: two factors, one
    /// cryptographic).
    pub fn needs_totp(self) -> bool {
        self != Role::Enterprise
    }
}

/// A signed-in user, as a request sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
    /// The bank's or department's source id, the firm's USCC, a person's pseudonymous id, or empty.
    pub org: String,
    pub name: String,
    #[serde(skip)]
    pub csrf: String,
    #[serde(skip)]
    pub token_hash: String,
}

impl Principal {
    /// An account as a principal outside a session (a command, a webhook's owner): no form or token.
    pub fn of(u: User) -> Principal {
        Principal {
            user_id: u.user_id,
            role: u.role,
            org: u.org,
            name: u.name,
            csrf: String::new(),
            token_hash: String::new(),
        }
    }
}

/// The commonest passwords (a short list; a deployment may extend it): refused whatever their length.
const COMMON: &[&str] = &[
    "12345678",
    "123456789",
    "1234567890",
    "password",
    "password1",
    "password123",
    "qwertyui",
    "qwerty123",
    "11111111",
    "00000000",
    "88888888",
    "66666666",
    "abcd1234",
    "1qaz2wsx",
    "iloveyou",
    "admin123",
    "admin888",
    "welcome1",
    "letmein1",
    "a1234567",
    "aa123456",
    "woaini1314",
    "5201314520",
    "1q2w3e4r",
    "zxcvbnm1",
    "abc12345",
    "asdfghjk",
    "xinyong123",
    "changeme",
];

/// Checks a new password against the policy.
pub fn password_policy(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if n < 8 {
        return Err("a password has at least 8 characters".into());
    }
    if n > 64 {
        return Err("a password has at most 64 characters".into());
    }
    if COMMON.contains(&pw.to_lowercase().as_str()) {
        return Err("this password is among the commonest ones; choose another".into());
    }
    Ok(())
}

/// The argon2id hash of a password (a PHC string with its salt and parameters).
pub fn hash_password(pw: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

/// Whether `pw` matches the stored hash.
pub fn verify_password(pw: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A hash to verify against when the account does not exist, so that an unknown name takes as long as a wrong
/// password (no account enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// A new TOTP secret (160 random bits, base32 as authenticator apps take it).
pub fn new_totp_secret() -> String {
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    totp_rs::Secret::Raw(b.to_vec()).to_encoded().to_string()
}

fn totp(secret_b32: &str) -> Option<totp_rs::TOTP> {
    let bytes = totp_rs::Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).ok()
}

/// The TOTP code of a secret at unix time `t` (what an authenticator app shows; tests and the demo use it).
pub fn totp_code(secret_b32: &str, t: u64) -> Option<String> {
    totp(secret_b32).map(|x| x.generate(t))
}

/// The 30-second step a code matches at unix time `t` (one step of skew either way), if any.
pub fn totp_step(secret_b32: &str, code: &str, t: u64) -> Option<u64> {
    let x = totp(secret_b32)?;
    let now = t / 30;
    [now, now.saturating_sub(1), now + 1]
        .into_iter()
        .find(|s| x.generate(s * 30).as_bytes() == code.trim().as_bytes())
}

/// 256 random bits, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A stored account.
#[derive(Debug, Clone)]
pub struct User {
    pub user_id: String,
    pub role: Role,
    pub org: String,
    pub name: String,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub disabled: bool,
}

impl User {
    fn from_row(r: &[Value]) -> Option<User> {
        Some(User {
            user_id: r.first()?.as_str()?.to_string(),
            role: Role::parse(r.get(1)?.as_str()?)?,
            org: r.get(2)?.as_str()?.to_string(),
            name: r.get(3)?.as_str()?.to_string(),
            password_hash: r.get(4)?.as_str()?.to_string(),
            totp_secret: r.get(5)?.as_str().map(String::from),
            disabled: r.get(7)?.as_int()? != 0,
        })
    }

    pub fn row(&self, created_at: &str) -> Vec<Value> {
        vec![
            Value::text(&self.user_id),
            Value::text(self.role.code()),
            Value::text(&self.org),
            Value::text(&self.name),
            Value::text(&self.password_hash),
            Value::opt_text(self.totp_secret.clone()),
            Value::text(created_at),
            Value::Int(i64::from(self.disabled)),
        ]
    }
}

pub fn user(store: &dyn Store, user_id: &str) -> Result<Option<User>, Error> {
    let rows = store.rows(&RowQuery::all("users").eq("user_id", Value::text(user_id)))?;
    Ok(rows.first().and_then(|r| User::from_row(r)))
}

pub fn users(store: &dyn Store) -> Result<Vec<User>, Error> {
    Ok(store
        .rows(&RowQuery::all("users"))?
        .iter()
        .filter_map(|r| User::from_row(r))
        .collect())
}

/// Session timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: u64,
    pub absolute: u64,
}

/// Starts a session for `u` at unix time `now`: returns the cookie's token and the session's CSRF token.
pub fn start_session(store: &mut dyn Store, u: &User, now: i64) -> Result<(String, String), Error> {
    let token = random_token();
    let csrf = random_token();
    store.apply_rows(&[RowOp::Insert {
        table: "sessions",
        row: vec![
            Value::text(sha256_hex(&token)),
            Value::text(&u.user_id),
            Value::text(&csrf),
            Value::Int(now),
            Value::Int(now),
            Value::Int(0),
        ],
    }])?;
    Ok((token, csrf))
}

/// The signed-in user of a session token at unix time `now`, if the session is live (not revoked, within
/// both timeouts, its account enabled). Marks it seen (at most once a minute, to spare writes).
pub fn session(store: &mut dyn Store, token: &str, now: i64, t: Timeouts) -> Result<Option<Principal>, Error> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hash = sha256_hex(token);
    let rows = store.rows(&RowQuery::all("sessions").eq("token_hash", Value::text(&hash)))?;
    let Some(r) = rows.first() else { return Ok(None) };
    let (Some(user_id), Some(csrf), Some(created), Some(seen), Some(revoked)) = (
        r[1].as_str(),
        r[2].as_str(),
        r[3].as_int(),
        r[4].as_int(),
        r[5].as_int(),
    ) else {
        return Ok(None);
    };
    if revoked != 0 || now - seen > t.idle as i64 || now - created > t.absolute as i64 {
        return Ok(None);
    }
    let Some(u) = user(store, user_id)? else {
        return Ok(None);
    };
    if u.disabled {
        return Ok(None);
    }
    if now - seen >= 60 {
        // Only while it is not revoked: a logout between the read above and this write stays a logout.
        let touched = store.apply_rows(&[RowOp::Update {
            table: "sessions",
            key: vec![Value::text(&hash)],
            set: vec![("last_seen", Value::Int(now))],
            expect: vec![("revoked", Value::Int(0))],
        }]);
        match touched {
            Ok(()) => {}
            Err(xinyong_store::StoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(Principal {
        user_id: u.user_id,
        role: u.role,
        org: u.org,
        name: u.name,
        csrf: csrf.to_string(),
        token_hash: hash,
    }))
}

/// Creates an API token for `u`: returns the token (shown once) and its id.
pub fn create_token(store: &mut dyn Store, u: &Principal, label: &str, now: &str) -> Result<(String, String), Error> {
    let token = format!("xyt_{}", random_token());
    let hash = sha256_hex(&token);
    let id = hash[..12].to_string();
    store.apply_rows(&[RowOp::Insert {
        table: "api_tokens",
        row: vec![
            Value::text(&hash),
            Value::text(&id),
            Value::text(&u.user_id),
            Value::text(label),
            Value::text(now),
            Value::Int(0),
        ],
    }])?;
    Ok((token, id))
}

/// An API token as listed: (id, label, created at, revoked).
pub fn tokens_of(store: &dyn Store, user_id: &str) -> Result<Vec<(String, String, String, bool)>, Error> {
    Ok(store
        .rows(&RowQuery::all("api_tokens").eq("user_id", Value::text(user_id)))?
        .iter()
        .filter_map(|r| {
            Some((
                r[1].as_str()?.to_string(),
                r[3].as_str()?.to_string(),
                r[4].as_str()?.to_string(),
                r[5].as_int()? != 0,
            ))
        })
        .collect())
}

/// Revokes one of `user_id`'s tokens; false if it has none of that id.
pub fn revoke_token(store: &mut dyn Store, user_id: &str, token_id: &str) -> Result<bool, Error> {
    let rows = store.rows(&RowQuery::all("api_tokens").eq("token_id", Value::text(token_id)))?;
    let Some(r) = rows.into_iter().find(|r| r[2].as_str() == Some(user_id)) else {
        return Ok(false);
    };
    let mut row = r;
    row[5] = Value::Int(1);
    store.apply_rows(&[RowOp::Put {
        table: "api_tokens",
        row,
    }])?;
    Ok(true)
}

/// The user behind an API token (not revoked, its account enabled); the session fields are empty (a token
/// request carries no cookie, so no CSRF token applies).
pub fn token_principal(store: &dyn Store, token: &str) -> Result<Option<Principal>, Error> {
    if !token.starts_with("xyt_") || token.len() != 68 {
        return Ok(None);
    }
    let hash = sha256_hex(token);
    let rows = store.rows(&RowQuery::all("api_tokens").eq("token_hash", Value::text(&hash)))?;
    let Some(r) = rows.first() else { return Ok(None) };
    if r[5].as_int() != Some(0) {
        return Ok(None);
    }
    let Some(u) = r[2].as_str().map(|id| user(store, id)).transpose()?.flatten() else {
        return Ok(None);
    };
    if u.disabled {
        return Ok(None);
    }
    Ok(Some(Principal {
        user_id: u.user_id,
        role: u.role,
        org: u.org,
        name: u.name,
        csrf: String::new(),
        token_hash: format!("token:{}", &hash[..12]),
    }))
}

/// Whether a session is still in force for a long-lived response (an event stream): not revoked (logout),
/// within its absolute timeout, its account enabled. The idle timeout is not applied: the stream itself is the
/// activity. Reads only.
pub fn session_in_force(store: &dyn Store, token: &str, now: i64, t: Timeouts) -> Result<bool, Error> {
    let hash = sha256_hex(token);
    let rows = store.rows(&RowQuery::all("sessions").eq("token_hash", Value::text(&hash)))?;
    let Some(r) = rows.first() else { return Ok(false) };
    let (Some(user_id), Some(created), Some(revoked)) = (r[1].as_str(), r[3].as_int(), r[5].as_int()) else {
        return Ok(false);
    };
    if revoked != 0 || now - created > t.absolute as i64 {
        return Ok(false);
    }
    Ok(user(store, user_id)?.is_some_and(|u| !u.disabled))
}

/// Ends a session (logout).
pub fn end_session(store: &mut dyn Store, token_hash: &str) -> Result<(), Error> {
    match store.apply_rows(&[RowOp::Update {
        table: "sessions",
        key: vec![Value::text(token_hash)],
        set: vec![("revoked", Value::Int(1))],
        expect: vec![],
    }]) {
        Ok(()) | Err(xinyong_store::StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Failed logins per account and per address: after `max` failures within the window, further attempts are
/// refused until the window has passed since the first failure (in memory: a restart forgets them).
pub struct Throttle {
    map: Mutex<HashMap<String, (u32, Instant)>>,
    window: Duration,
}

impl Throttle {
    pub fn new(window: Duration) -> Throttle {
        Throttle {
            map: Mutex::new(HashMap::new()),
            window,
        }
    }

    /// Seconds to wait, if `key` is locked out after `max` failures.
    pub fn locked(&self, key: &str, max: u32) -> Option<u64> {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let (n, first) = m.get(key)?;
        let left = self.window.checked_sub(first.elapsed())?;
        (*n >= max).then(|| left.as_secs().max(1))
    }

    /// Counts an attempt for `key` and tells whether it is locked out (more than `max` attempts in the window,
    /// this one included); a successful login then clears (or undoes) its count.
    pub fn attempt(&self, key: &str, max: u32) -> Option<u64> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(key.to_string()).or_insert((0, Instant::now()));
        if e.1.elapsed() > self.window {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        let left = self.window.saturating_sub(e.1.elapsed()).as_secs().max(1);
        let locked = e.0 > max;
        if m.len() > 100_000 {
            let w = self.window;
            m.retain(|_, v| v.1.elapsed() <= w);
        }
        locked.then_some(left)
    }

    /// Takes back one counted attempt (a success that should not count against its address).
    pub fn undo(&self, key: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = m.get_mut(key) {
            e.0 = e.0.saturating_sub(1);
        }
    }

    pub fn fail(&self, key: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(key.to_string()).or_insert((0, Instant::now()));
        if e.1.elapsed() > self.window {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        if m.len() > 100_000 {
            let w = self.window;
            m.retain(|_, v| v.1.elapsed() <= w);
        }
    }

    pub fn clear(&self, key: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// Token buckets per user or API token: `rate` requests a second on average, bursts of `burst`.
pub struct RateLimit {
    map: Mutex<HashMap<String, (f64, Instant)>>,
    rate: f64,
    burst: f64,
}

impl RateLimit {
    pub fn new(rate: f64, burst: f64) -> RateLimit {
        RateLimit {
            map: Mutex::new(HashMap::new()),
            rate,
            burst,
        }
    }

    /// Takes one request for `key`; `Err(seconds to wait)` when its bucket is empty.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let e = m.entry(key.to_string()).or_insert((self.burst, now));
        e.0 = (e.0 + now.duration_since(e.1).as_secs_f64() * self.rate).min(self.burst);
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - e.0) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// Remembers the TOTP step each account last used, so that a code is accepted once.
#[derive(Default)]
pub struct UsedCodes(Mutex<HashMap<String, u64>>);

impl UsedCodes {
    /// Records `step` for `user`; false if that step (or a later one) was used already.
    pub fn claim(&self, user: &str, step: u64) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(user) {
            Some(&s) if s >= step => false,
            _ => {
                m.insert(user.to_string(), step);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn the_password_policy() {
        assert!(password_policy("short").is_err());
        assert!(password_policy("Password1").is_err(), "common, whatever the case");
        assert!(password_policy(&"x".repeat(65)).is_err());
        assert!(password_policy(&"长".repeat(8)).is_ok());
        assert!(password_policy("tide-pool-garnet").is_ok());
    }

    #[test]
    fn totp_matches_the_rfc_6238_vector_and_allows_one_step_of_skew() {
        // RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" at T = 59 s gives 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let secret = totp_rs::Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(totp_code(&secret, 59).unwrap(), "287082");
        assert_eq!(totp_step(&secret, "287082", 59), Some(1));
        assert_eq!(
            totp_step(&secret, "287082", 89),
            Some(1),
            "the previous step is accepted"
        );
        assert_eq!(totp_step(&secret, "287082", 120), None, "two steps later it is not");
        let used = UsedCodes::default();
        assert!(used.claim("u", 1));
        assert!(!used.claim("u", 1), "a code is accepted once");
    }

    #[test]
    fn throttle_and_rate_limit() {
        let t = Throttle::new(Duration::from_secs(900));
        for _ in 0..4 {
            t.fail("user:a");
        }
        assert!(t.locked("user:a", 5).is_none());
        t.fail("user:a");
        assert!(t.locked("user:a", 5).unwrap() > 800);
        t.clear("user:a");
        assert!(t.locked("user:a", 5).is_none());
        // Counted before checking: the sixth attempt in the window is refused.
        for _ in 0..5 {
            assert!(t.attempt("user:b", 5).is_none());
        }
        assert!(t.attempt("user:b", 5).is_some());
        let r = RateLimit::new(1.0, 3.0);
        assert!((0..3).all(|_| r.take("k").is_ok()));
        assert_eq!(r.take("k"), Err(1));
        assert!(r.take("other").is_ok());
    }
}
