//! The loader's per-firm records kept beside the facts, so that a recompute does not parse every fact's JSON
//! again (at district scale: 9.7 million facts, most of a full recompute's load time).
//!
//! What is kept: exactly what [`crate::credit::load`] returns for one `known_by` date (the store's data
//! cut-off, what a recompute reads), serialised with postcard in parts of a few hundred firms, encoded and
//! decoded on every core; each part carries the table of the source and dataset names its records cite by
//! index. The store tags it with the facts' generation: every commit that writes facts (a delivery, an
//! import; in SQLite also any insert of a batch row, by a trigger, whatever program writes it) moves the
//! generation on in the same transaction, which retires the cache, so a stale cache is never read. The key
//! also names this build of the program (its file's size, times and inode), so a program whose records or
//! loader changed never reads a cache another build wrote. `xinyong ingest` refreshes the cache after a
//! delivery; a load that finds none reads the facts and writes it (a failed write is reported, not fatal);
//! one that finds a cache that does not decode says so, reads the facts and writes it anew.

use crate::credit::{Loaded, ScoreError};
use rayon::prelude::*;
use xinyong_credit::data::{self, FirmData};
use xinyong_store::{Store, StoreError};

/// The layout of the cached records; with the build identity in the key, a changed layout is never read.
const FORMAT: &str = "credit-firms-v2";
/// Firms per part: parts are encoded and decoded in parallel.
const FIRMS_PER_PART: usize = 256;

/// How a load used the cache.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheUse {
    /// The store keeps no cache, the date is not the data cut-off, or a delivery committed while the facts
    /// were read (the cache would have been stale): the facts were read, nothing was written.
    #[default]
    None,
    /// The records were read from the cache.
    Read,
    /// The facts were read and the cache written for the next load.
    Written,
    /// The store held a cache for these facts that did not decode (damaged, or a layout this build cannot
    /// read under its own key, which would be a bug): the facts were read and the cache written anew.
    Replaced,
    /// The facts were read; writing the cache failed (the store busy with a delivery, or full), which does
    /// not fail the load: the next one tries again.
    WriteFailed(String),
}

impl CacheUse {
    /// For the timing lines of `score` and `score --bench-core`.
    pub fn describe(&self) -> String {
        match self {
            CacheUse::None => "from the facts".into(),
            CacheUse::Read => "from the cache".into(),
            CacheUse::Written => "from the facts, cache written".into(),
            CacheUse::Replaced => "from the facts: the cache held did not decode and was written anew".into(),
            CacheUse::WriteFailed(e) => format!("from the facts; the cache was not written: {e}"),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    facts: u64,
    skipped: std::collections::BTreeMap<String, u64>,
    parts: u64,
}

/// The key the cache is kept under for a load of the facts known by `known_by`; `None` (no cache) when this
/// build cannot read itself, or when `XINYONG_FACT_CACHE=off` (benchmarks of loading from the facts).
pub fn key(known_by: &str) -> Option<String> {
    if std::env::var_os("XINYONG_FACT_CACHE").is_some_and(|v| v == "off") {
        return None;
    }
    Some(format!("{FORMAT}|{}|{known_by}", build_id()?))
}

/// This program's identity, from its file: size, modification and change times, device and inode. The change
/// time is set by the system whenever the file is written or installed (packaging that fixes modification
/// times cannot set it), so another build — or the same path rebuilt — keys its own cache. Elsewhere than
/// on Unix, a hash of the file's bytes.
fn build_id() -> Option<&'static str> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(exe).ok()?;
            Some(format!(
                "{}-{}.{}-{}.{}-{}-{}",
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                m.dev(),
                m.ino()
            ))
        }
        #[cfg(not(unix))]
        {
            use std::hash::Hasher;
            let bytes = std::fs::read(exe).ok()?;
            let mut h = rustc_hash::FxHasher::default();
            h.write(&bytes);
            Some(format!("{}-{:016x}", bytes.len(), h.finish()))
        }
    })
    .as_deref()
}

/// What the store holds under a key for the current facts.
pub enum Cached {
    Hit(Loaded),
    /// No cache for these facts under this key.
    Missing,
    /// A cache that does not decode (a part missing, truncated or of another layout).
    Unreadable,
}

/// The cached load under `key`, if the store holds one for the current facts; the caller reads the facts
/// when it is missing or does not decode, and writes it again.
pub fn read(store: &dyn Store, key: &str) -> Result<Cached, ScoreError> {
    // Each part is decoded on the pool while this thread reads the next one from the store.
    let decoded: std::sync::Mutex<Vec<(usize, Option<Vec<FirmData>>)>> = Default::default();
    let mut head: Option<Vec<u8>> = None;
    let mut n = 0;
    let found = rayon::in_place_scope(|scope| {
        store.read_fact_cache(key, &mut |p| {
            if head.is_none() {
                head = Some(p.to_vec());
                return Ok(());
            }
            let (i, bytes, out) = (n, p.to_vec(), &decoded);
            n += 1;
            scope.spawn(move |_| {
                let firms = decode_part(&bytes);
                out.lock().unwrap_or_else(|e| e.into_inner()).push((i, firms));
            });
            Ok(())
        })
    })?;
    let (true, Some(head)) = (found, head) else {
        return Ok(Cached::Missing);
    };
    let mut body = decoded.into_inner().unwrap_or_else(|e| e.into_inner());
    body.sort_unstable_by_key(|x| x.0);
    Ok(match assemble(&head, body.into_iter().map(|x| x.1).collect()) {
        Some(l) => Cached::Hit(l),
        None => Cached::Unreadable,
    })
}

/// One part: its table of names, then its firms.
fn decode_part(p: &[u8]) -> Option<Vec<FirmData>> {
    let (names, firms) = postcard::take_from_bytes::<Vec<&str>>(p).ok()?;
    data::decode_names(&names, || postcard::from_bytes::<Vec<FirmData>>(firms)).ok()
}

/// The load from the header and the decoded parts, in order; `None` if a part is missing or did not decode.
fn assemble(head: &[u8], body: Vec<Option<Vec<FirmData>>>) -> Option<Loaded> {
    let h: Header = postcard::from_bytes(head).ok()?;
    if h.parts != body.len() as u64 {
        return None;
    }
    let firms: Vec<Vec<FirmData>> = body.into_iter().collect::<Option<_>>()?;
    Some(Loaded {
        firms: firms.into_iter().flatten().collect(),
        facts: h.facts,
        skipped: h.skipped,
        cache: CacheUse::Read,
    })
}

#[cfg(test)]
fn decode(parts: &[Vec<u8>]) -> Option<Loaded> {
    let (head, body) = parts.split_first()?;
    assemble(head, body.iter().map(|p| decode_part(p)).collect())
}

fn encode(l: &Loaded) -> Result<Vec<Vec<u8>>, ScoreError> {
    let enc = |e: postcard::Error| ScoreError::Store(StoreError::Backend(format!("credit cache: {e}")));
    let chunks: Vec<&[FirmData]> = l.firms.chunks(FIRMS_PER_PART).collect();
    let head = Header {
        facts: l.facts,
        skipped: l.skipped.clone(),
        parts: chunks.len() as u64,
    };
    let mut out = vec![postcard::to_allocvec(&head).map_err(enc)?];
    // Each part: its table of names, then its firms (names as indices into the table).
    let body: Vec<Vec<u8>> = chunks
        .par_iter()
        .map(|c| {
            let (firms, names) = data::encode_names(|| postcard::to_allocvec(c));
            let mut part = postcard::to_allocvec(&names)?;
            part.extend(firms?);
            Ok(part)
        })
        .collect::<Result<_, postcard::Error>>()
        .map_err(enc)?;
    out.extend(body);
    Ok(out)
}

/// After a delivery: reads the facts known by the data cut-off into the cache, so that the next recompute
/// starts from it. Returns the firms loaded and how the cache was used (written, already held, or why not
/// written), or `None` when the store keeps no cache or it is turned off.
pub fn refresh(store: &dyn Store) -> Result<Option<(usize, CacheUse)>, ScoreError> {
    let (Some(_), Some(cut)) = (store.fact_generation()?, store.data_cutoff()?) else {
        return Ok(None);
    };
    if key(&cut).is_none() {
        return Ok(None);
    }
    let l = crate::credit::load(store, &cut)?;
    Ok(Some((l.firms.len(), l.cache)))
}

/// Writes `l` (read from the facts at `generation`) under `key`; false when a commit of facts came in
/// between (the cache would be stale, so nothing is written).
pub fn write(store: &dyn Store, generation: u64, key: &str, l: &Loaded) -> Result<bool, ScoreError> {
    Ok(store.write_fact_cache(generation, key, &encode(l)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credit::RETENTION_ENDED;

    #[test]
    fn the_counts_of_unread_facts_survive_the_cache() {
        let mut l = Loaded::default();
        for (i, r) in ["json", "period", RETENTION_ENDED].into_iter().enumerate() {
            l.skipped.insert(r.to_string(), i as u64 + 1);
        }
        let back = decode(&encode(&l).unwrap()).unwrap();
        assert_eq!(back.skipped, l.skipped);
        assert_eq!(back.cache, CacheUse::Read);
    }

    /// A firm with records of every kind that cites names (events, loans, guarantees, provenance).
    fn firm() -> FirmData {
        use xinyong_credit::data::{Names, RawFact};
        let mut f = FirmData::new("91330604MA2B7Y8F54");
        let mut names = Names::default();
        let facts = [
            (
                "amr",
                "amr.registration",
                None,
                None,
                r#"{"name":"x","industry":"3441","status":"active"}"#,
            ),
            (
                "court",
                "court.dishonest",
                None,
                Some("2025-03-01"),
                r#"{"category":"dishonest_debtor"}"#,
            ),
            (
                "bank01",
                "lender.bank01.loans",
                Some("2025-02"),
                None,
                r#"{"loan_id":"L1","balance":5}"#,
            ),
            (
                "bank01",
                "lender.bank01.guarantees",
                None,
                Some("2025-01-05"),
                r#"{"guarantor_id":"g","amount":1}"#,
            ),
            (
                "power",
                "power.daily",
                Some("2025-02"),
                None,
                r#"{"metric:power_kwh":7}"#,
            ),
        ];
        for (i, (source, dataset, period, date, fields)) in facts.into_iter().enumerate() {
            let raw = RawFact {
                fact_id: i as i64 + 1,
                uscc: f.uscc.clone(),
                source: source.into(),
                dataset: dataset.into(),
                period: period.map(str::to_string),
                event_date: date.map(str::to_string),
                end_date: None,
                fields: fields.into(),
                known_from: "2025-03-10".into(),
                known_to: None,
            };
            f.add(&raw, &mut names).unwrap();
        }
        f.finish();
        f
    }

    #[test]
    fn records_read_back_are_the_records_written() {
        let l = Loaded {
            firms: vec![firm(); 600],
            facts: 3000,
            ..Loaded::default()
        };
        assert!(l.firms[0].provenance.len() == 5 && !l.firms[0].events.is_empty() && !l.firms[0].loans.is_empty());
        let parts = encode(&l).unwrap();
        assert_eq!(parts.len(), 1 + 600usize.div_ceil(FIRMS_PER_PART));
        let back = decode(&parts).unwrap();
        let json = |l: &Loaded| serde_json::to_value(&l.firms).unwrap();
        assert_eq!(json(&back), json(&l));
        // The facts of one (source, dataset) share one origin within a part (decoded on one thread): what
        // keeps a fact's provenance at 32 bytes plus nothing per fact.
        let mut seen: std::collections::HashMap<(String, String), *const xinyong_credit::data::Origin> =
            Default::default();
        for f in &back.firms[..FIRMS_PER_PART.min(back.firms.len())] {
            for p in &f.provenance {
                let key = (p.source().to_string(), p.dataset().to_string());
                let ptr = std::sync::Arc::as_ptr(&p.origin);
                assert_eq!(*seen.entry(key).or_insert(ptr), ptr, "an origin decoded twice");
            }
        }
        assert_eq!(seen.len(), 5);
        // Outside the cache, names are text.
        let text = serde_json::to_string(&l.firms[0]).unwrap();
        assert!(text.contains("\"court.dishonest\""), "{text}");
    }

    #[test]
    fn a_cache_that_does_not_decode_is_not_read() {
        let l = Loaded {
            firms: vec![FirmData::new("91330604MA2B7Y8F54")],
            facts: 1,
            ..Loaded::default()
        };
        let mut parts = encode(&l).unwrap();
        assert!(decode(&parts).is_some());
        parts[1].truncate(3);
        assert!(decode(&parts).is_none());
        parts.pop();
        assert!(decode(&parts).is_none(), "a missing part");
        assert!(decode(&[]).is_none());
    }
}
