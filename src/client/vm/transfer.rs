//! One file-transfer path for every engine ([`push_file`], [`pull_file`]: what
//! `VmEngine::push_file` and `pull_file` do). The page and the guest share a directory
//! ([`SharedDirectory`]: v86's 9p share, CheerpX's DataDevice and IDBDevice, the part each
//! engine provides); a file goes through it under a temporary name, and a shell in the guest
//! copies it into place (or out of it) and deletes the temporary file. A path inside the
//! shared directory itself is read or written directly. Plain Rust over the engine traits,
//! so it is tested natively.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{ExecCommand, VmEngine, VmError, VmFuture};

/// Time limit of the guest-side copy.
const COPY_TIMEOUT_MS: u64 = 120_000;

/// Where an engine's shared directories are in the guest (no trailing `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedDirs {
    /// Where the files the page writes appear.
    pub to_guest: &'static str,
    /// Where the guest puts files for the page to read.
    pub from_guest: &'static str,
}

/// The directories an engine shares between the page and the guest.
pub trait SharedDirectory {
    /// Where they are in the guest.
    fn dirs(&self) -> SharedDirs;

    /// Writes `name` (relative) into [`SharedDirs::to_guest`].
    fn write_shared<'a>(&'a self, name: &'a str, data: &'a [u8]) -> VmFuture<'a, ()>;

    /// Reads `name` (relative) from [`SharedDirs::from_guest`].
    fn read_shared<'a>(&'a self, name: &'a str) -> VmFuture<'a, Vec<u8>>;

    /// Frees a pushed temporary file that the guest can't delete itself (a read-only
    /// share); nothing to do by default.
    fn discard_pushed<'a>(&'a self, _name: &'a str) -> VmFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A fresh name for a temporary guest file, `.webvm-<what>-<µs>-<n>`, and its number `n`
/// (unique in this page). The time keeps names from repeating those of files a restored
/// snapshot may still hold.
pub fn temp_name(what: &str) -> (u64, String) {
    let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed) + 1;
    let micros = chrono::Utc::now().timestamp_micros().max(0);
    (n, format!(".webvm-{what}-{micros}-{n}"))
}

/// `path` relative to `dir`, if it lies inside it.
fn inside<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    path.strip_prefix(dir)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
}

/// Runs `sh -c script args…` in the guest; its stderr is the error when it fails.
async fn shell<E: VmEngine + ?Sized>(
    engine: &E,
    script: &str,
    args: &[&str],
) -> Result<(), VmError> {
    let mut command = ExecCommand::new(
        "sh",
        ["-c".to_string(), script.to_string()]
            .into_iter()
            .chain(args.iter().map(|arg| arg.to_string())),
    );
    command.timeout_ms = Some(COPY_TIMEOUT_MS);
    let result = engine.exec(command).await?;
    if result.status.success() {
        Ok(())
    } else {
        Err(VmError::Guest {
            errno: None,
            message: String::from_utf8_lossy(&result.stderr).trim().to_string(),
        })
    }
}

/// Frees a file that [`push_file`] wrote straight into the share (a `path` inside
/// [`SharedDirs::to_guest`]) once the guest is done with it: on a read-only share the guest's
/// own `rm` can't. Any other path is left alone.
pub async fn discard_pushed_file<E: VmEngine + ?Sized>(
    engine: &E,
    path: &str,
) -> Result<(), VmError> {
    match inside(path, engine.dirs().to_guest) {
        Some(name) => engine.discard_pushed(name).await,
        None => Ok(()),
    }
}

/// Writes `data` to the absolute guest `path` (parent directories are created).
pub async fn push_file<E: VmEngine + ?Sized>(
    engine: &E,
    path: String,
    data: Vec<u8>,
) -> Result<(), VmError> {
    if let Some(name) = inside(&path, engine.dirs().to_guest) {
        return engine.write_shared(name, &data).await;
    }
    if !path.starts_with('/') {
        return Err(VmError::Invalid(format!(
            "{path:?} is not an absolute path"
        )));
    }
    let (_, temp) = temp_name("push");
    engine.write_shared(&temp, &data).await?;
    let shared = format!("{}/{temp}", engine.dirs().to_guest);
    let copied = shell(
        engine,
        r#"mkdir -p "$(dirname "$1")" && cat "$0" > "$1"; s=$?; rm -f "$0" 2>/dev/null; exit $s"#,
        &[&shared, &path],
    )
    .await;
    let _ = engine.discard_pushed(&temp).await;
    copied
}

/// Reads the guest file at `path`.
pub async fn pull_file<E: VmEngine + ?Sized>(engine: &E, path: String) -> Result<Vec<u8>, VmError> {
    if let Some(name) = inside(&path, engine.dirs().from_guest) {
        return engine.read_shared(name).await;
    }
    let (_, temp) = temp_name("pull");
    let shared = format!("{}/{temp}", engine.dirs().from_guest);
    shell(engine, r#"cp -- "$0" "$1""#, &[&path, &shared]).await?;
    let bytes = engine.read_shared(&temp).await;
    let _ = shell(engine, r#"rm -f -- "$0""#, &[&shared]).await;
    bytes
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use futures::executor::block_on;

    use super::*;
    use crate::client::vm::{
        BootReport, BootRequest, EngineKind, ExecResult, ExitStatus, ProcessExit, ProcessHandle,
        ProcessListener, Snapshot, TcpEvent, TcpStream,
    };
    use crate::model::SystemResources;

    type Files = Rc<RefCell<BTreeMap<String, Vec<u8>>>>;

    /// A guest whose file system is a map and whose shell knows the three transfer scripts.
    struct FakeGuest {
        files: Files,
        execs: RefCell<u32>,
        /// Whether the guest can delete files in the page → guest directory.
        share_writable: bool,
        discarded: RefCell<Vec<String>>,
    }

    impl FakeGuest {
        fn new(share_writable: bool) -> Self {
            FakeGuest {
                files: Files::default(),
                execs: RefCell::new(0),
                share_writable,
                discarded: RefCell::new(Vec::new()),
            }
        }

        fn names(&self) -> Vec<String> {
            self.files.borrow().keys().cloned().collect()
        }

        fn run(&self, args: &[String]) -> (i32, String) {
            let mut files = self.files.borrow_mut();
            // sh -c script "$0" "$1"
            let script = args[2].as_str();
            let (from, to) = (&args[3], args.get(4));
            if script.starts_with("mkdir") {
                let Some(data) = files.get(from).cloned() else {
                    return (1, format!("cat: {from}: No such file"));
                };
                let to = to.expect("a target");
                let status = if to.starts_with("/readonly/") {
                    (1, format!("sh: {to}: Read-only file system"))
                } else {
                    files.insert(to.clone(), data);
                    (0, String::new())
                };
                if self.share_writable {
                    files.remove(from);
                }
                status
            } else if script.starts_with("cp") {
                match files.get(from).cloned() {
                    Some(data) => {
                        files.insert(to.expect("a target").clone(), data);
                        (0, String::new())
                    }
                    None => (1, format!("cp: cannot stat '{from}': No such file")),
                }
            } else if script.starts_with("rm") {
                files.remove(from);
                (0, String::new())
            } else {
                (127, format!("unknown script {script}"))
            }
        }
    }

    fn unsupported<T>() -> VmFuture<'static, T> {
        Box::pin(async {
            Err(VmError::Unsupported {
                engine: "fake",
                what: "this",
            })
        })
    }

    impl VmEngine for FakeGuest {
        fn kind(&self) -> EngineKind {
            EngineKind::V86
        }
        fn boot(&self, _request: BootRequest) -> VmFuture<'_, BootReport> {
            unsupported()
        }
        fn exec(&self, command: ExecCommand) -> VmFuture<'_, ExecResult> {
            Box::pin(async move {
                *self.execs.borrow_mut() += 1;
                assert_eq!(command.command, "sh");
                assert_eq!(command.timeout_ms, Some(COPY_TIMEOUT_MS));
                let (code, stderr) = self.run(&command.argv());
                Ok(ExecResult {
                    status: ExitStatus::Code(code),
                    timed_out: false,
                    stdout: Vec::new(),
                    stderr: stderr.into_bytes(),
                    truncated: false,
                    duration_ms: 1,
                })
            })
        }
        fn spawn(&self, _: ExecCommand, _: ProcessListener) -> VmFuture<'_, ProcessHandle> {
            unsupported()
        }
        fn signal(&self, _: u64, _: u8) -> VmFuture<'_, ()> {
            unsupported()
        }
        fn wait(&self, _: u64, _: u64) -> VmFuture<'_, ProcessExit> {
            unsupported()
        }
        fn stats(&self) -> VmFuture<'_, SystemResources> {
            unsupported()
        }
        fn ping(&self) -> VmFuture<'_, ()> {
            unsupported()
        }
        fn hibernate(&self) -> VmFuture<'_, Snapshot> {
            unsupported()
        }
        fn resume(&self) -> VmFuture<'_, ()> {
            unsupported()
        }
        fn connect(&self, _: u16, _: Rc<dyn Fn(TcpEvent)>) -> VmFuture<'_, TcpStream> {
            unsupported()
        }
        fn console_send(&self, _: &[u8]) {}
        fn shutdown(&self) -> VmFuture<'_, ()> {
            unsupported()
        }
    }

    impl SharedDirectory for FakeGuest {
        fn dirs(&self) -> SharedDirs {
            SharedDirs {
                to_guest: "/mnt/host",
                from_guest: "/mnt/out",
            }
        }
        fn write_shared<'a>(&'a self, name: &'a str, data: &'a [u8]) -> VmFuture<'a, ()> {
            self.files
                .borrow_mut()
                .insert(format!("/mnt/host/{name}"), data.to_vec());
            Box::pin(async { Ok(()) })
        }
        fn read_shared<'a>(&'a self, name: &'a str) -> VmFuture<'a, Vec<u8>> {
            let found = self
                .files
                .borrow()
                .get(&format!("/mnt/out/{name}"))
                .cloned();
            Box::pin(async move { found.ok_or_else(|| VmError::Js(format!("no {name}"))) })
        }
        fn discard_pushed<'a>(&'a self, name: &'a str) -> VmFuture<'a, ()> {
            self.discarded.borrow_mut().push(name.to_string());
            if !self.share_writable {
                self.files.borrow_mut().remove(&format!("/mnt/host/{name}"));
            }
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn a_pushed_file_lands_in_place_and_leaves_no_temporary_file() {
        for share_writable in [true, false] {
            let guest = FakeGuest::new(share_writable);
            block_on(guest.push_file("/srv/app/a.txt".into(), b"hi".to_vec())).unwrap();
            assert_eq!(guest.names(), vec!["/srv/app/a.txt".to_string()]);
            assert_eq!(guest.discarded.borrow().len(), 1);
        }
    }

    #[test]
    fn a_failed_copy_reports_the_guest_error_and_cleans_up() {
        for share_writable in [true, false] {
            let guest = FakeGuest::new(share_writable);
            let error = block_on(guest.push_file("/readonly/a".into(), b"x".to_vec()));
            assert_eq!(
                error,
                Err(VmError::Guest {
                    errno: None,
                    message: "sh: /readonly/a: Read-only file system".into()
                })
            );
            assert!(guest.names().is_empty(), "{:?}", guest.names());
        }
    }

    #[test]
    fn a_pulled_file_comes_back_and_leaves_no_temporary_file() {
        let guest = FakeGuest::new(true);
        guest
            .files
            .borrow_mut()
            .insert("/etc/os-release".into(), b"debian".to_vec());
        assert_eq!(
            block_on(guest.pull_file("/etc/os-release".into())),
            Ok(b"debian".to_vec())
        );
        assert_eq!(guest.names(), vec!["/etc/os-release".to_string()]);
        assert!(matches!(
            block_on(guest.pull_file("/nope".into())),
            Err(VmError::Guest { message, .. }) if message.contains("cannot stat")
        ));
    }

    #[test]
    fn shared_paths_go_direct_and_relative_paths_are_refused() {
        let guest = FakeGuest::new(true);
        block_on(guest.push_file("/mnt/host/direct".into(), b"1".to_vec())).unwrap();
        guest
            .files
            .borrow_mut()
            .insert("/mnt/out/result".into(), b"2".to_vec());
        assert_eq!(
            block_on(guest.pull_file("/mnt/out/result".into())),
            Ok(b"2".to_vec())
        );
        assert_eq!(
            *guest.execs.borrow(),
            0,
            "no shell for the shared directory"
        );
        assert!(matches!(
            block_on(guest.push_file("relative/a".into(), Vec::new())),
            Err(VmError::Invalid(_))
        ));
        // The directory itself is not a file in it.
        assert_eq!(inside("/mnt/host/", "/mnt/host"), None);
        assert_eq!(inside("/mnt/hostile/a", "/mnt/host"), None);
    }

    #[test]
    fn temporary_names_never_repeat() {
        let (first, a) = temp_name("push");
        let (second, b) = temp_name("push");
        assert!(second > first);
        assert_ne!(a, b);
        assert!(a.starts_with(".webvm-push-"));
    }
}
