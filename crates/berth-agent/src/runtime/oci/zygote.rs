//! The shim zygote: one `berth zygote` process per oci driver, executed once and kept
//! single-threaded, which forks each container's shim instead of the driver executing
//! `berth shim` anew. A fork of a small single-threaded process costs a fraction of an exec
//! of the `berth` binary (mapping and relocating it, the loader's start-up, the first touch of
//! its code and heap), and every task start pays that once per container.
//!
//! The driver and the zygote talk over a socket pair, one JSON line each way per shim: the
//! shim's arguments, then its pid or why there is none. The forked shim is what `berth shim`
//! would be (it runs the same function), with nothing of the zygote's but its memory: default
//! signal handling, `/dev/null` for its standard streams, no other descriptor. The zygote
//! ignores `SIGCHLD`, so the kernel reaps its shims. When the driver's end closes (the agent
//! stopped), the zygote exits; its shims live on in their own sessions, as executed ones do.
//! When no zygote answers, the driver executes the shim as before.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::runtimes::RuntimeCommand;

/// What a shim is started with: `berth shim`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimArgs {
    pub runtime: RuntimeCommand,
    pub id: String,
    pub bundle: PathBuf,
    pub cgroups_path: String,
}

#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Forked(u32),
    Failed(String),
}

/// The driver's side: the zygote, started at the first shim and again after it died.
pub struct Zygote {
    binary: PathBuf,
    link: Mutex<Option<Link>>,
}

struct Link {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Zygote {
    /// A zygote run from `binary` (the `berth` binary) when first needed.
    pub fn new(binary: PathBuf) -> Self {
        Self { binary, link: Mutex::new(None) }
    }

    /// Forks a shim for `args`; its pid. Blocking (a line each way, well under a millisecond).
    pub fn spawn(&self, args: &ShimArgs) -> io::Result<u32> {
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        // A zygote that died since (or never started) is started again, once per call.
        for fresh in [false, true] {
            if fresh || link.is_none() {
                *link = Some(start(&self.binary)?);
            }
            let l = link.as_mut().expect("started above");
            match ask(l, args) {
                Ok(Answer::Forked(pid)) => return Ok(pid),
                Ok(Answer::Failed(why)) => return Err(io::Error::other(why)),
                Err(e) if fresh => {
                    *link = None;
                    return Err(e);
                }
                Err(_) => continue,
            }
        }
        unreachable!("the second round returns")
    }
}

fn ask(link: &mut Link, args: &ShimArgs) -> io::Result<Answer> {
    let mut line = serde_json::to_string(args).map_err(io::Error::other)?;
    line.push('\n');
    link.writer.write_all(line.as_bytes())?;
    let mut answer = String::new();
    if link.reader.read_line(&mut answer)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the shim zygote ended"));
    }
    serde_json::from_str(&answer).map_err(io::Error::other)
}

/// The environment that keeps transparent huge pages from the allocator of a process as small
/// as a shim (or the zygote): mimalloc asks for them where the kernel offers them on request,
/// and each first touch of its heap then zeroes 2 MiB.
pub(super) const NO_HUGE_PAGES: (&str, &str) = ("MIMALLOC_ALLOW_THP", "0");

fn start(binary: &Path) -> io::Result<Link> {
    let (ours, theirs) = UnixStream::pair()?;
    let mut child = Command::new(binary)
        .arg("zygote")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // The forked shims inherit the setting.
        .env(NO_HUGE_PAGES.0, NO_HUGE_PAGES.1)
        .spawn()?;
    std::thread::spawn(move || child.wait());
    Ok(Link { reader: BufReader::new(ours.try_clone()?), writer: ours })
}

/// The zygote itself (`berth zygote`): serves the driver on standard input until it closes.
/// `shim` is the shim's body, called in each forked child.
pub fn serve(shim: impl Fn(&ShimArgs) -> io::Result<()>) -> io::Result<()> {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // SAFETY: descriptor 0 is the driver's socket, given by `start`, and owned here alone.
    let socket = UnixStream::from(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(0) });
    let mut writer = socket.try_clone()?;
    for line in BufReader::new(socket).lines() {
        let answer = match serde_json::from_str::<ShimArgs>(&line?) {
            Ok(args) => fork_shim(&args, &shim),
            Err(e) => Answer::Failed(format!("a request the zygote cannot read: {e}")),
        };
        let mut out = serde_json::to_string(&answer).map_err(io::Error::other)?;
        out.push('\n');
        writer.write_all(out.as_bytes())?;
    }
    Ok(())
}

fn fork_shim(args: &ShimArgs, shim: &impl Fn(&ShimArgs) -> io::Result<()>) -> Answer {
    // SAFETY: the zygote has one thread, so the child's copy of its memory is consistent.
    match unsafe { libc::fork() } {
        -1 => Answer::Failed(format!("fork: {}", io::Error::last_os_error())),
        0 => {
            let code = match become_shim() {
                Ok(()) => match shim(args) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("berth shim: {e}");
                        1
                    }
                },
                Err(_) => 1,
            };
            std::process::exit(code)
        }
        pid => Answer::Forked(pid as u32),
    }
}

/// What an executed shim starts with: default `SIGCHLD` (it waits for its children),
/// `/dev/null` as its standard streams, no other descriptor.
fn become_shim() -> io::Result<()> {
    // SAFETY: restores a signal's default disposition.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    drop(null);
    // SAFETY: closes every descriptor from 3 up (the zygote's socket among them).
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ShimArgs {
        ShimArgs {
            runtime: RuntimeCommand { program: "runsc".into(), args: vec!["--platform=ptrace".into()] },
            id: "berth-1-web".into(),
            bundle: "/var/lib/berth/oci/containers/berth-1-web".into(),
            cgroups_path: "/berth/berth-1-web".into(),
        }
    }

    /// A zygote that ends at once (here `true`, which serves nothing) is started once more,
    /// then the caller hears why (and executes the shim itself); so is one that cannot start.
    #[test]
    fn a_zygote_that_ends_is_an_error_not_a_hang() {
        let z = Zygote::new("/bin/true".into());
        let e = z.spawn(&args()).unwrap_err();
        // Ended before the request was written (a broken pipe), after it (end of file), or
        // with it unread (reset).
        let ended = [io::ErrorKind::UnexpectedEof, io::ErrorKind::BrokenPipe, io::ErrorKind::ConnectionReset];
        assert!(ended.contains(&e.kind()), "{e}");
        assert!(z.link.lock().unwrap().is_none());
        let missing = Zygote::new("/nonexistent/berth".into());
        assert_eq!(missing.spawn(&args()).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn shim_arguments_cross_the_socket_whole() {
        let args = args();
        let line = serde_json::to_string(&args).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<ShimArgs>(&line).unwrap(), args);
    }
}
