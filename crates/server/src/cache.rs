//! What the server keeps between requests because it changes only when the store's data does: each firm's
//! overview per viewer class (the page's template value and the API's JSON, built once), and each bank's
//! current borrowers (one query per bank instead of a firm's whole record per request).
//!
//! Who may see what is never cached: `access::firm_access` decides the viewer class on every request (an
//! authorisation or revocation holds on the next one) and only then is the overview of that class taken from
//! here. Everything is dropped when the data changes (a new batch or scoring run) or the day does (publicity
//! windows end at midnight), as found by
//! [`crate::AppState::refresh`] (every `refresh_secs`, and at once after an upload through the data page).
//! The overviews are bounded by `overview_cache_mb` (an estimate: three times the JSON's length); past it, a
//! slice of the entries is dropped (arbitrary ones: a hash map's order).

use crate::pages::{Overview, Viewer};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// A firm's overview for one viewer class, ready to render and to send.
pub struct CachedOverview {
    /// The overview as the templates take it.
    pub tpl: minijinja::Value,
    /// The overview as JSON (the API's `overview`).
    pub json: String,
    /// The firm's guarantee group, if it is in one (the subscribe button).
    pub group: Option<String>,
}

impl CachedOverview {
    pub fn new(ov: &Overview) -> Result<CachedOverview, crate::Error> {
        let json = serde_json::to_string(ov).map_err(|e| crate::Error::Internal(format!("overview JSON: {e}")))?;
        Ok(CachedOverview {
            tpl: minijinja::Value::from_serialize(ov),
            json,
            group: ov.circle.as_ref().map(|c| c.group.clone()),
        })
    }

    fn cost(&self) -> usize {
        3 * self.json.len() + 256
    }
}

/// The data's generation: the newest scoring run and the batches stored. A change drops the caches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Generation {
    pub run: Option<String>,
    pub batches: usize,
    /// A hash of the batch ids.
    pub digest: u64,
    /// Today (Asia/Shanghai): a publicity window ends at midnight.
    pub day: String,
}

/// The firms a bank lends to or guarantees.
pub type Borrowers = Arc<HashSet<String>>;

#[derive(Default)]
struct Overviews {
    map: HashMap<(String, Viewer), Arc<CachedOverview>>,
    bytes: usize,
}

pub struct Caches {
    budget: usize,
    overviews: RwLock<Overviews>,
    /// (bank, first month counted) → the firms it lends to or guarantees.
    borrowers: Mutex<HashMap<(String, String), Borrowers>>,
    generation: Mutex<Generation>,
    /// The thematic analysis and the support-policy matches, built on first use.
    pub themes: Slot<crate::themes::Themes>,
    pub support: Slot<crate::support::Matches>,
}

/// A district-wide result built once per data generation (held while it is built: one build at a time).
pub struct Slot<T>(Mutex<Option<Arc<T>>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

impl<T> Slot<T> {
    /// The kept value, or the one `build` makes (kept).
    pub fn get_or(&self, build: impl FnOnce() -> Result<T, crate::Error>) -> Result<Arc<T>, crate::Error> {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(x) = t.as_ref() {
            return Ok(x.clone());
        }
        let built = Arc::new(build()?);
        *t = Some(built.clone());
        Ok(built)
    }

    fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Caches {
    /// Caches holding at most about `budget_bytes` of overviews (0: none kept).
    pub fn new(budget_bytes: usize, generation: Generation) -> Caches {
        Caches {
            budget: budget_bytes,
            overviews: RwLock::new(Overviews::default()),
            borrowers: Mutex::new(HashMap::new()),
            generation: Mutex::new(generation),
            themes: Slot::default(),
            support: Slot::default(),
        }
    }

    /// Records the data's generation; when it changed, drops everything and says so.
    pub fn advance(&self, now: Generation) -> bool {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        if *g == now {
            return false;
        }
        *g = now;
        self.clear();
        true
    }

    /// Drops everything (the data changed).
    pub fn clear(&self) {
        if let Ok(mut o) = self.overviews.write() {
            *o = Overviews::default();
        }
        if let Ok(mut b) = self.borrowers.lock() {
            b.clear();
        }
        self.themes.clear();
        self.support.clear();
    }

    /// The overview of `uscc` for `viewer`: kept, or made by `make` and kept.
    pub fn overview(
        &self,
        uscc: &str,
        viewer: Viewer,
        make: impl FnOnce() -> Result<Overview, crate::Error>,
    ) -> Result<Arc<CachedOverview>, crate::Error> {
        if let Some(c) = self.kept(uscc, viewer) {
            return Ok(c);
        }
        let key = (uscc.to_string(), viewer);
        let made = Arc::new(CachedOverview::new(&make()?)?);
        let cost = made.cost();
        if cost <= self.budget / 8 {
            if let Ok(mut o) = self.overviews.write() {
                if o.bytes + cost > self.budget {
                    // Drop about a quarter of the budget's worth of entries.
                    let target = self.budget * 3 / 4;
                    let victims: Vec<(String, Viewer)> = {
                        let mut freed = 0usize;
                        let mut v = Vec::new();
                        for (k, e) in &o.map {
                            if o.bytes - freed + cost <= target {
                                break;
                            }
                            freed += e.cost();
                            v.push(k.clone());
                        }
                        v
                    };
                    for k in victims {
                        if let Some(e) = o.map.remove(&k) {
                            o.bytes -= e.cost();
                        }
                    }
                }
                if let Some(old) = o.map.insert(key, made.clone()) {
                    o.bytes -= old.cost();
                }
                o.bytes += cost;
            }
        }
        Ok(made)
    }

    /// The kept overview of `uscc` for `viewer`, if there is one.
    pub fn kept(&self, uscc: &str, viewer: Viewer) -> Option<Arc<CachedOverview>> {
        self.overviews
            .read()
            .ok()
            .and_then(|o| o.map.get(&(uscc.to_string(), viewer)).cloned())
    }

    /// How many overviews are kept, and their estimated bytes.
    pub fn overview_stats(&self) -> (usize, usize) {
        self.overviews.read().map(|o| (o.map.len(), o.bytes)).unwrap_or((0, 0))
    }

    /// The firms `bank` lends to or guarantees in a month from `since` on: kept, or read by `read` and kept.
    pub fn borrowers(
        &self,
        bank: &str,
        since: &str,
        read: impl FnOnce() -> Result<HashSet<String>, crate::Error>,
    ) -> Result<Borrowers, crate::Error> {
        let key = (bank.to_string(), since.to_string());
        if let Some(s) = self.borrowers.lock().ok().and_then(|b| b.get(&key).cloned()) {
            return Ok(s);
        }
        let set = Arc::new(read()?);
        if let Ok(mut b) = self.borrowers.lock() {
            b.insert(key, set.clone());
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ov(rows: usize) -> Overview {
        Overview {
            full: false,
            registration: vec![("reg.name".into(), "x".repeat(rows))],
            registration_fact: None,
            registration_disputed: None,
            records: Vec::new(),
            score: None,
            warnings: Vec::new(),
            series: Default::default(),
            circle: None,
        }
    }

    #[test]
    fn an_overview_is_made_once_per_viewer_and_dropped_when_the_data_changes() {
        let c = Caches::new(1 << 20, Generation::default());
        let mut made = 0;
        for _ in 0..3 {
            c.overview("f1", Viewer::Public, || {
                made += 1;
                Ok(ov(10))
            })
            .unwrap();
        }
        assert_eq!(made, 1);
        c.overview("f1", Viewer::Full, || {
            made += 1;
            Ok(ov(10))
        })
        .unwrap();
        assert_eq!(made, 2, "each viewer class is its own entry");
        assert!(!c.advance(Generation::default()), "same generation: kept");
        assert_eq!(c.overview_stats().0, 2);
        assert!(c.advance(Generation {
            batches: 1,
            ..Default::default()
        }));
        assert_eq!(c.overview_stats(), (0, 0));
    }

    #[test]
    fn the_overviews_stay_within_their_budget() {
        let budget = 64 * 1024;
        let c = Caches::new(budget, Generation::default());
        for i in 0..500 {
            c.overview(&format!("f{i}"), Viewer::Public, || Ok(ov(500))).unwrap();
            let (_, bytes) = c.overview_stats();
            assert!(bytes <= budget, "{bytes} > {budget} after {i}");
        }
        assert!(c.overview_stats().0 > 10);
        // Too big to keep: made and returned, not kept.
        let big = c.overview("big", Viewer::Public, || Ok(ov(budget))).unwrap();
        assert!(big.json.len() > budget);
        assert!(c.overview_stats().1 <= budget);
    }

    #[test]
    fn a_failed_make_is_not_kept() {
        let c = Caches::new(1 << 20, Generation::default());
        assert!(c
            .overview("f", Viewer::Public, || Err(crate::Error::Internal("x".into())))
            .is_err());
        assert_eq!(c.overview_stats().0, 0);
    }
}
