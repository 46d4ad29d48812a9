//! What a task's runs have found so far, file by file, folded one run at a
//! time (oldest first) for the trends' "new" and "fixed". The rule is the
//! notifier's (`notifier/novelty.rs`, which folds the other way, newest
//! first, for one run): what is known for a file comes from the latest
//! run in which no analyzer failed that looked at it; findings without a
//! file are known whichever run found them, until a whole-project run; a
//! run on a few files makes nothing elsewhere look fixed, and "fixed"
//! counts only known findings in what the run looked at.
//!
//! Fingerprints and paths are numbers here ([`Interner`]): a window holds
//! 100 000 runs, most of which find what the one before found, and such a
//! run costs a look-up per finding and nothing more. The maps hash with
//! [`Fx`], not the standard library's `SipHash`: none of their keys comes
//! from a network peer, and `SipHash` was a third of the pass.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::analyze::Severity;

/// The Firefox/rustc hash: a rotate, a xor and a multiply per word.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map hashed with [`Fx`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;
/// A set hashed with [`Fx`].
pub type FxSet<K> = HashSet<K, BuildHasherDefault<Fx>>;

/// Strings (as stored, unchecked bytes) as numbers, each kept once.
#[derive(Debug, Default)]
pub struct Interner(FxMap<Box<[u8]>, u32>);

impl Interner {
    pub fn id(&mut self, s: &[u8]) -> u32 {
        if let Some(&id) = self.0.get(s) {
            return id;
        }
        let id = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        self.0.insert(s.into(), id);
        id
    }
}

/// One finding of a run, as stored (interned).
#[derive(Debug, Clone, Copy)]
pub struct Found {
    pub fingerprint: u32,
    /// Index into [`Severity::ALL`] (critical first).
    pub severity: usize,
    pub path: Option<u32>,
}

/// The index of a stored severity name in [`Severity::ALL`]; an unknown
/// name counts as `info`.
pub fn severity_index(name: &[u8]) -> usize {
    Severity::ALL
        .iter()
        .position(|s| s.as_str().as_bytes() == name)
        .unwrap_or(Severity::ALL.len() - 1)
}

/// Findings by severity, in [`Severity::ALL`]'s order.
pub type Counts = [u64; 5];

/// The files a run looked at (`None`: the whole project).
pub type Scope<'a> = Option<&'a FxSet<u32>>;

/// A task's known findings: each fingerprint with its file (`None`: a
/// finding without a file) and severity.
#[derive(Debug, Default)]
pub struct Known {
    entries: FxMap<u32, (Option<u32>, usize)>,
    /// How many entries each file has.
    per_path: FxMap<Option<u32>, u64>,
    counts: Counts,
}

impl Known {
    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert(&mut self, f: &Found) {
        if let Some((path, severity)) = self.entries.insert(f.fingerprint, (f.path, f.severity)) {
            self.forgot(path, severity);
        }
        *self.per_path.entry(f.path).or_default() += 1;
        self.counts[f.severity] += 1;
    }

    fn forgot(&mut self, path: Option<u32>, severity: usize) {
        self.counts[severity] -= 1;
        if let Some(n) = self.per_path.get_mut(&path) {
            *n -= 1;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.per_path.clear();
        self.counts = Counts::default();
    }

    /// Known findings in what a run looked at.
    fn in_scope(&self, scope: Scope<'_>) -> u64 {
        match scope {
            None => self.entries.len() as u64,
            Some(files) => files
                .iter()
                .map(|p| self.per_path.get(&Some(*p)).copied().unwrap_or(0))
                .sum(),
        }
    }
}

/// Whether a run that looked at `scope` looked at a finding's `path`.
fn looked_at(scope: Scope<'_>, path: Option<u32>) -> bool {
    match (scope, path) {
        (None, _) => true,
        (Some(s), Some(p)) => s.contains(&p),
        (Some(_), None) => false,
    }
}

/// A run of the task in which no analyzer failed, against what was known
/// (`None`: the task's first run, all of whose findings are new): its new
/// and fixed findings. `known` then holds what is known after it.
pub fn fold(known: &mut Option<Known>, scope: Scope<'_>, found: &[Found]) -> (u64, u64) {
    let first = known.is_none();
    let k = known.get_or_insert_with(Known::default);
    let mut new = 0;
    let mut still = FxSet::default();
    for f in found {
        match k.entries.get(&f.fingerprint) {
            None => new += 1,
            Some((path, _)) if looked_at(scope, *path) => {
                still.insert(f.fingerprint);
            }
            Some(_) => {}
        }
    }
    let fixed = if first {
        0
    } else {
        k.in_scope(scope) - still.len() as u64
    };
    if new == 0 && fixed == 0 {
        // What was known is found again: only a severity may have changed.
        for f in found {
            if let Some(&(path, severity)) = k.entries.get(&f.fingerprint)
                && severity != f.severity
                && looked_at(scope, path)
            {
                k.insert(&Found { path, ..*f });
            }
        }
        return (0, 0);
    }
    match scope {
        None => k.clear(),
        Some(s) => {
            let gone: Vec<(u32, Option<u32>, usize)> = k
                .entries
                .iter()
                .filter(|(_, (path, _))| path.is_some_and(|p| s.contains(&p)))
                .map(|(fp, (path, severity))| (*fp, *path, *severity))
                .collect();
            for (fp, path, severity) in gone {
                k.entries.remove(&fp);
                k.forgot(path, severity);
            }
        }
    }
    for f in found {
        // Findings without a file are evidence whichever run found them.
        if f.path.is_none() || looked_at(scope, f.path) {
            k.insert(f);
        }
    }
    (new, fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture(Interner);

    impl Fixture {
        fn found(&mut self, list: &[(&str, Option<&str>)]) -> Vec<Found> {
            list.iter()
                .map(|(fp, path)| Found {
                    fingerprint: self.0.id(fp.as_bytes()),
                    severity: severity_index(b"high"),
                    path: path.map(|p| self.0.id(p.as_bytes())),
                })
                .collect()
        }

        fn scope(&mut self, files: &[&str]) -> FxSet<u32> {
            files.iter().map(|f| self.0.id(f.as_bytes())).collect()
        }
    }

    #[test]
    fn new_and_fixed_by_file_as_the_notifier_counts_them() {
        let mut x = Fixture(Interner::default());
        let mut k = None;
        // The first run: everything new.
        let first = x.found(&[("a1", Some("x.py")), ("b", Some("y.py")), ("pkg", None)]);
        assert_eq!(fold(&mut k, None, &first), (3, 0));
        // The same again: nothing new, nothing fixed.
        assert_eq!(fold(&mut k, None, &first), (0, 0));
        // A run on x.py only: a1 gone, a2 new; y.py and pkg untouched.
        let (s, a2) = (x.scope(&["x.py"]), x.found(&[("a2", Some("x.py"))]));
        assert_eq!(fold(&mut k, Some(&s), &a2), (1, 1));
        assert_eq!(k.as_ref().unwrap().counts()[1], 3, "a2, b, pkg");
        // A run on y.py where b stays: nothing new, nothing fixed.
        let (s, b) = (x.scope(&["y.py"]), x.found(&[("b", Some("y.py"))]));
        assert_eq!(fold(&mut k, Some(&s), &b), (0, 0));
        // A run on z.py finding nothing: nothing fixed elsewhere.
        let s = x.scope(&["z.py"]);
        assert_eq!(fold(&mut k, Some(&s), &[]), (0, 0));
        // A whole-project run that finds only b: a2 and pkg fixed.
        assert_eq!(fold(&mut k, None, &b), (0, 2));
        // b found again, now as low.
        let mut low = b.clone();
        low[0].severity = severity_index(b"low");
        assert_eq!(fold(&mut k, None, &low), (0, 0));
        let k = k.unwrap();
        assert_eq!(k.counts(), [0, 0, 0, 1, 0]);
        assert!(!k.is_empty());
    }

    #[test]
    fn severities_by_name() {
        assert_eq!(severity_index(b"critical"), 0);
        assert_eq!(severity_index(b"info"), 4);
        assert_eq!(severity_index(b"whatever"), 4);
    }
}
