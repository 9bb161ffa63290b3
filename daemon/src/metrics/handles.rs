//! The series every authentication touches, resolved once: `with_label_values` hashes every
//! label value and takes the vector's lock on each call, which a login paid five times. Here
//! the front-end, mechanism and outcome are array indexes (closed sets) and the directory a
//! short scan of the few names the chain has, each slot filled on first use (so a series
//! appears in `/metrics` when first counted, exactly as before: names and labels unchanged).

use std::sync::{OnceLock, RwLock};

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

/// The `frontend` labels (`auth::Frontend::as_str`) and `mechanism` labels
/// (`auth::Mechanism::as_str`); anything else takes the label lookup.
const FRONTENDS: [&str; 4] = ["http", "dovecot-auth", "saslauthd", "nginx"];
const MECHANISMS: [&str; 7] = [
    "plain",
    "login",
    "xoauth2",
    "oauthbearer",
    "password",
    "basic",
    "oidc",
];
/// `Outcome::as_str`, in its order.
const OUTCOMES: usize = 4;
/// A directory's answers (`postern_directory_requests_total{result}`).
const ANSWERS: [&str; 4] = ["found", "unknown", "rejected", "error"];
/// Directory names kept: the chain's, `none`, `internal`; more only if reloads keep renaming
/// them, and those take the label lookup.
const MAX_DIRECTORIES: usize = 32;

type Slot<T> = OnceLock<T>;

fn slots<T, const N: usize>() -> [Slot<T>; N] {
    std::array::from_fn(|_| OnceLock::new())
}

struct Directory {
    name: Box<str>,
    /// `postern_auth_requests_total` by [frontend][mechanism][outcome].
    auth: [[[Slot<IntCounter>; OUTCOMES]; MECHANISMS.len()]; FRONTENDS.len()],
    answers: [Slot<IntCounter>; ANSWERS.len()],
    duration: Slot<Histogram>,
}

impl Directory {
    fn new(name: &str) -> Directory {
        Directory {
            name: name.into(),
            auth: std::array::from_fn(|_| std::array::from_fn(|_| slots())),
            answers: slots(),
            duration: OnceLock::new(),
        }
    }
}

pub(super) struct Handles {
    /// `postern_auth_duration_seconds` by [frontend][outcome].
    durations: [[Slot<Histogram>; OUTCOMES]; FRONTENDS.len()],
    directories: RwLock<Vec<Directory>>,
    /// `postern_password_hash_verifications_total` by scheme (a closed set of static labels).
    schemes: RwLock<Vec<(&'static str, IntCounter)>>,
}

fn index(set: &[&str], label: &str) -> Option<usize> {
    set.iter().position(|s| *s == label)
}

impl Handles {
    pub(super) fn new() -> Handles {
        Handles {
            durations: std::array::from_fn(|_| slots()),
            directories: RwLock::new(Vec::new()),
            schemes: RwLock::new(Vec::new()),
        }
    }

    /// Counts one password verification of `scheme`.
    pub(super) fn hash_verification(&self, vec: &IntCounterVec, scheme: &'static str) {
        {
            let list = self.schemes.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, c)) = list.iter().find(|(s, _)| *s == scheme) {
                c.inc();
                return;
            }
        }
        let c = vec.with_label_values(&[scheme]);
        c.inc();
        let mut list = self.schemes.write().unwrap_or_else(|p| p.into_inner());
        if list.len() < MAX_DIRECTORIES && !list.iter().any(|(s, _)| *s == scheme) {
            list.push((scheme, c));
        }
    }

    /// Calls `f` with the handles of directory `name`, added on first use; `None` past
    /// [`MAX_DIRECTORIES`].
    fn with_directory<R>(&self, name: &str, f: impl FnOnce(&Directory) -> R) -> Option<R> {
        {
            let list = self.directories.read().unwrap_or_else(|p| p.into_inner());
            if let Some(d) = list.iter().find(|d| &*d.name == name) {
                return Some(f(d));
            }
        }
        let mut list = self.directories.write().unwrap_or_else(|p| p.into_inner());
        if !list.iter().any(|d| &*d.name == name) {
            if list.len() >= MAX_DIRECTORIES {
                return None;
            }
            list.push(Directory::new(name));
        }
        list.iter().find(|d| &*d.name == name).map(f)
    }

    /// Counts and times one authentication.
    pub(super) fn auth(
        &self,
        vecs: (&IntCounterVec, &HistogramVec),
        labels: [&str; 3],
        outcome: (usize, &str),
        seconds: f64,
    ) {
        let [frontend, mechanism, directory] = labels;
        let (o, outcome) = outcome;
        let full = [frontend, mechanism, directory, outcome];
        let fast = match (index(&FRONTENDS, frontend), index(&MECHANISMS, mechanism)) {
            (Some(f), Some(m)) if o < OUTCOMES => self.with_directory(directory, |d| {
                d.auth[f][m][o]
                    .get_or_init(|| vecs.0.with_label_values(&full))
                    .inc();
                f
            }),
            _ => None,
        };
        match fast {
            Some(f) => self.durations[f][o]
                .get_or_init(|| vecs.1.with_label_values(&[frontend, outcome]))
                .observe(seconds),
            None => {
                vecs.0.with_label_values(&full).inc();
                vecs.1
                    .with_label_values(&[frontend, outcome])
                    .observe(seconds);
            }
        }
    }

    /// Counts and times one directory's answer.
    pub(super) fn directory_answer(
        &self,
        vecs: (&IntCounterVec, &HistogramVec),
        directory: &str,
        answer: &str,
        seconds: f64,
    ) {
        let done = index(&ANSWERS, answer).and_then(|a| {
            self.with_directory(directory, |d| {
                d.answers[a]
                    .get_or_init(|| vecs.0.with_label_values(&[directory, answer]))
                    .inc();
                d.duration
                    .get_or_init(|| vecs.1.with_label_values(&[directory]))
                    .observe(seconds);
            })
        });
        if done.is_none() {
            vecs.0.with_label_values(&[directory, answer]).inc();
            vecs.1.with_label_values(&[directory]).observe(seconds);
        }
    }
}
