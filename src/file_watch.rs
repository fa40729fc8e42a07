//! Polling for files that change under a running process.
//!
//! Kubernetes Secret and ConfigMap volumes replace their files by swapping a
//! `..data` symlink, which inotify-style watches on the file paths miss. So the
//! webhook polls: every interval it reads the files *through* their paths (following
//! symlinks), fingerprints the contents, and hands them to a callback when the
//! fingerprint differs from the last one it saw. A read error is a state too: it
//! is reported once, and again only after the files were readable in between or the
//! error changed.

use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

/// A SHA-256 over the contents of a set of files (length-prefixed, in order).
pub type Fingerprint = [u8; 32];

/// The contents of the watched files at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// One entry per path, in the order given.
    pub contents: Vec<Vec<u8>>,
    /// Fingerprint of `contents`.
    pub fingerprint: Fingerprint,
}

/// A watched file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    pub error: io::Error,
}

/// Fingerprint a list of byte strings.
pub fn fingerprint(contents: &[Vec<u8>]) -> Fingerprint {
    let mut hash = Sha256::new();
    for c in contents {
        hash.update((c.len() as u64).to_le_bytes());
        hash.update(c);
    }
    hash.finalize().into()
}

/// Read `paths` (blocking), following symlinks.
pub fn read_now(paths: &[PathBuf]) -> Result<Snapshot, ReadError> {
    let contents = paths
        .iter()
        .map(|p| read_one(p))
        .collect::<Result<Vec<_>, _>>()?;
    let fingerprint = fingerprint(&contents);
    Ok(Snapshot {
        contents,
        fingerprint,
    })
}

fn read_one(path: &Path) -> Result<Vec<u8>, ReadError> {
    std::fs::read(path).map_err(|error| ReadError {
        path: path.to_path_buf(),
        error,
    })
}

/// What a watch does with the files' new contents (or the error reading them).
type OnChange = Box<dyn FnMut(Result<Snapshot, ReadError>) + Send>;

/// Every watched set of files of a process, polled by one task.
///
/// Each module registers its files ([`Poller::watch`]); [`Poller::spawn`] then
/// polls them all from one task, so that an idle server wakes once per interval,
/// not once per watched set (each task's tick may wake a runtime worker of its
/// own: a second task at the same instant cost a second wake-up when measured).
///
/// For each set, a change is reported only once two consecutive polls saw the
/// same contents (or the same error): a file caught half-written by a non-atomic
/// writer, or a certificate read before and its key after a `..data` swap, is
/// never handed on unless it stays that way for a whole interval. A change
/// therefore takes one to two intervals to be reported. Errors reading are
/// passed on once per distinct error.
#[derive(Default)]
pub struct Poller {
    watches: Vec<Watch>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.watches.iter().map(|w| &w.paths))
            .finish()
    }
}

/// One watched set of files and what it last reported.
struct Watch {
    paths: Vec<PathBuf>,
    /// The fingerprint last reported (at first: the one already loaded).
    last: Fingerprint,
    /// Seen by the previous poll, different from `last`, not yet reported.
    pending: Option<Fingerprint>,
    on_change: OnChange,
}

impl Watch {
    fn poll(&mut self) {
        // Read in place: a few small files on a local (in Kubernetes: tmpfs)
        // volume take microseconds, and `tokio::fs` would hand every poll to a
        // blocking thread, whose coming and going costs more (each new thread
        // may get its own malloc arena).
        let result = read_now(&self.paths);
        let seen = match &result {
            Ok(s) => s.fingerprint,
            Err(e) => fingerprint(&[e.to_string().into_bytes()]),
        };
        if seen == self.last {
            self.pending = None;
        } else if self.pending == Some(seen) {
            self.pending = None;
            self.last = seen;
            (self.on_change)(result);
        } else {
            self.pending = Some(seen);
        }
    }
}

impl Poller {
    /// Nothing watched yet.
    pub fn new() -> Self {
        Poller::default()
    }

    /// Watch `paths`, whose contents as loaded have the fingerprint `initial`:
    /// `on_change` gets their contents (or the read error) when they change.
    pub fn watch<F>(&mut self, paths: Vec<PathBuf>, initial: Fingerprint, on_change: F)
    where
        F: FnMut(Result<Snapshot, ReadError>) + Send + 'static,
    {
        self.watches.push(Watch {
            paths,
            last: initial,
            pending: None,
            on_change: Box::new(on_change),
        });
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    /// Spawn the task that polls every watched set every `interval`, in the
    /// order they were registered; `None` when nothing is watched. The task
    /// runs until aborted (drop-abort it with the returned handle).
    pub fn spawn(self, interval: Duration) -> Option<JoinHandle<()>> {
        if self.is_empty() {
            return None;
        }
        let mut watches = self.watches;
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate; the initial fingerprints cover it
            loop {
                ticker.tick().await;
                for w in &mut watches {
                    // A handler that panics must not stop the other watches; it
                    // is not handed the same contents again (`last` is set first).
                    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| w.poll()));
                    if polled.is_err() {
                        tracing::error!(
                            files = ?w.paths,
                            "the handler of a watched file panicked; watching goes on"
                        );
                    }
                }
            }
        }))
    }
}

/// A set of background tasks aborted when dropped.
#[derive(Debug, Default)]
pub struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    /// Empty.
    pub fn new() -> Self {
        Tasks(Vec::new())
    }

    /// Add a task.
    pub fn push(&mut self, task: JoinHandle<()>) {
        self.0.push(task);
    }

    /// Add all of another set's tasks.
    pub fn extend(&mut self, mut other: Tasks) {
        self.0.append(&mut other.0);
    }

    /// Abort them all now.
    pub fn abort_all(&mut self) {
        for t in self.0.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A poller of one set of files.
    fn poll_one(
        paths: Vec<PathBuf>,
        initial: Fingerprint,
        interval: Duration,
        on_change: impl FnMut(Result<Snapshot, ReadError>) + Send + 'static,
    ) -> JoinHandle<()> {
        let mut poller = Poller::new();
        poller.watch(paths, initial, on_change);
        poller.spawn(interval).unwrap()
    }

    #[test]
    fn fingerprint_is_length_prefixed() {
        assert_ne!(
            fingerprint(&[b"ab".to_vec(), b"c".to_vec()]),
            fingerprint(&[b"a".to_vec(), b"bc".to_vec()])
        );
    }

    #[tokio::test]
    async fn reports_changes_and_errors_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "one").unwrap();
        let initial = read_now(std::slice::from_ref(&file)).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut tasks = Tasks::new();
        tasks.push(poll_one(
            vec![file.clone()],
            initial.fingerprint,
            Duration::from_millis(10),
            move |r| {
                s.lock().unwrap().push(match r {
                    Ok(snap) => String::from_utf8(snap.contents[0].clone()).unwrap(),
                    Err(_) => "error".into(),
                })
            },
        ));
        let wait_for = |n: usize| {
            let seen = seen.clone();
            async move {
                for _ in 0..200 {
                    if seen.lock().unwrap().len() >= n {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(seen.lock().unwrap().is_empty(), "unchanged file reported");
        std::fs::write(&file, "two").unwrap();
        wait_for(1).await;
        std::fs::remove_file(&file).unwrap();
        wait_for(2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::fs::write(&file, "three").unwrap();
        wait_for(3).await;
        assert_eq!(*seen.lock().unwrap(), vec!["two", "error", "three"]);
    }

    /// Two files, `a` ("a0") and `b` ("b0"), in a fresh directory.
    fn two_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a0").unwrap();
        std::fs::write(&b, "b0").unwrap();
        (dir, a, b)
    }

    /// The fingerprint of one file as it is now.
    fn now(path: &Path) -> Fingerprint {
        read_now(&[path.to_path_buf()]).unwrap().fingerprint
    }

    /// A handler that appends every content it is handed, as text, to `seen`.
    fn record(
        seen: &Arc<Mutex<Vec<String>>>,
    ) -> impl FnMut(Result<Snapshot, ReadError>) + Send + 'static {
        let seen = seen.clone();
        move |r| {
            let text = String::from_utf8(r.unwrap().contents[0].clone()).unwrap();
            seen.lock().unwrap().push(text);
        }
    }

    /// Wait (at most 2 s) until `seen` is `want`.
    async fn wait_until_seen(seen: &Mutex<Vec<String>>, want: &[&str]) {
        for _ in 0..200 {
            if *seen.lock().unwrap() == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("saw {:?}, want {want:?}", seen.lock().unwrap());
    }

    #[tokio::test]
    async fn one_task_reports_each_watched_set_on_its_own() {
        assert!(Poller::new().spawn(Duration::from_millis(10)).is_none());
        let (_dir, a, b) = two_files();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut poller = Poller::new();
        poller.watch(vec![a.clone()], now(&a), record(&seen));
        poller.watch(vec![b.clone()], now(&b), record(&seen));
        let mut tasks = Tasks::new();
        tasks.push(poller.spawn(Duration::from_millis(10)).unwrap());
        std::fs::write(&b, "b1").unwrap();
        wait_until_seen(&seen, &["b1"]).await;
        std::fs::write(&a, "a1").unwrap();
        wait_until_seen(&seen, &["b1", "a1"]).await;
        // Nothing more while neither changes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(*seen.lock().unwrap(), vec!["b1", "a1"]);
    }

    #[tokio::test]
    async fn a_handler_that_panics_does_not_stop_the_other_watches() {
        let (_dir, a, b) = two_files();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut poller = Poller::new();
        // Registered first: without the guard its panic would end the task
        // before `b` is polled.
        poller.watch(vec![a.clone()], now(&a), |_| panic!("a handler panics"));
        poller.watch(vec![b.clone()], now(&b), record(&seen));
        let mut tasks = Tasks::new();
        tasks.push(poller.spawn(Duration::from_millis(10)).unwrap());
        std::fs::write(&a, "a1").unwrap();
        std::fs::write(&b, "b1").unwrap();
        wait_until_seen(&seen, &["b1"]).await;
        std::fs::write(&b, "b2").unwrap();
        wait_until_seen(&seen, &["b1", "b2"]).await;
    }

    #[tokio::test]
    async fn contents_that_change_at_every_poll_are_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "0").unwrap();
        let initial = read_now(std::slice::from_ref(&file)).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut tasks = Tasks::new();
        tasks.push(poll_one(
            vec![file.clone()],
            initial.fingerprint,
            Duration::from_millis(100),
            move |r| s.lock().unwrap().push(r.unwrap().contents[0].clone()),
        ));
        // A writer that never holds still for a whole interval (a new value about
        // every millisecond, so each poll sees a different one): nothing is reported.
        let f = file.clone();
        let writer = std::thread::spawn(move || {
            for i in 1..=600 {
                let tmp = f.with_extension("tmp");
                std::fs::write(&tmp, i.to_string()).unwrap();
                std::fs::rename(&tmp, &f).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        while !writer.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        writer.join().unwrap();
        assert!(
            seen.lock().unwrap().is_empty(),
            "{:?}",
            seen.lock().unwrap()
        );
        // Then it holds still: reported once, after at most two intervals.
        std::fs::write(&file, "done").unwrap();
        for _ in 0..200 {
            if !seen.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*seen.lock().unwrap(), vec![b"done".to_vec()]);
    }
}
