//! The shim: one small process per container (forked by the driver's zygote, or executed as
//! `berth shim`), in its own session so it outlives agent restarts. It has a runc-compatible
//! runtime `create` the container, or creates it itself under the berth runtime
//! ([`native`](super::native)); the driver starts it. It reaps the container as its
//! subreaper, keeps its stdout/stderr as JSON lines in a rotated log file, and when the
//! container exits writes `exit.json` with the exit code and whether the kernel killed it
//! for memory. With `interactive` it keeps the container's standard input open; with a
//! terminal (`process.terminal` in the bundle) it takes the terminal's master end from the
//! runtime through a console socket and logs what the container writes to it as stdout.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::runtimes::RuntimeCommand;

pub const LOG_FILE: &str = "log.json";
/// The shim's [`Options`], written by the driver.
pub const OPTIONS_FILE: &str = "shim.json";
/// Where the runtime hands over a terminal's master end: a short path of its own, since a
/// socket's path may not be longer than 107 bytes and bundle paths can be.
fn console_socket() -> PathBuf {
    std::env::temp_dir().join(format!("berth-console-{}.sock", std::process::id()))
}
pub const EXIT_FILE: &str = "exit.json";
/// The health check the driver asks for (a `HealthSpec`), and the verdict the shim keeps.
pub const HEALTHCHECK_FILE: &str = "healthcheck.json";
pub const HEALTH_FILE: &str = "health.json";
/// The container's init pid, written by `runtime create`: the container is created.
pub const PID_FILE: &str = "container.pid";
/// The container's bridge address and published ports, for the shim to forward.
pub const FORWARDS_FILE: &str = "forwards.json";

#[derive(Deserialize)]
struct Forwards {
    address: std::net::Ipv4Addr,
    forwards: Vec<super::network::Forward>,
}

/// Copies bytes from `a` to `b` until either side closes.
fn splice(mut a: std::net::TcpStream, mut b: std::net::TcpStream) {
    let _ = io::copy(&mut a, &mut b);
    let _ = b.shutdown(std::net::Shutdown::Write);
}

/// Binds every published port now (so a taken port fails the start) and forwards each
/// connection to the container's address.
fn forward_ports(bundle: &Path) -> io::Result<()> {
    let Ok(raw) = fs::read(bundle.join(FORWARDS_FILE)) else { return Ok(()) };
    let plan: Forwards = serde_json::from_slice(&raw).map_err(io::Error::other)?;
    for f in plan.forwards {
        let target = std::net::SocketAddr::from((plan.address, f.container_port));
        if f.protocol == super::network::Protocol::Udp {
            let socket = std::net::UdpSocket::bind(("0.0.0.0", f.host_port))?;
            std::thread::spawn(move || relay_udp(socket, target));
            continue;
        }
        let listener = std::net::TcpListener::bind(("0.0.0.0", f.host_port))?;
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    if let Ok(upstream) =
                        std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(5))
                        && let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone())
                    {
                        std::thread::spawn(move || splice(c2, u2));
                        splice(upstream, client);
                    }
                });
            }
        });
    }
    Ok(())
}

/// How long a UDP client's session lives without traffic.
const UDP_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Relays datagrams between clients of the host port and the container. Each client gets its
/// own upstream socket, so the container's replies go back to the client that asked.
fn relay_udp(socket: std::net::UdpSocket, target: std::net::SocketAddr) {
    use std::collections::HashMap;
    use std::net::{SocketAddr, UdpSocket};
    let sessions: Arc<Mutex<HashMap<SocketAddr, UdpSocket>>> = Default::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf) else { continue };
        let upstream = {
            let mut open = sessions.lock().expect("sessions lock");
            if let Some(Ok(s)) = open.get(&client).map(UdpSocket::try_clone) {
                s
            } else {
                let Ok(up) = UdpSocket::bind(("0.0.0.0", 0)).and_then(|u| u.connect(target).map(|_| u)) else {
                    continue;
                };
                let _ = up.set_read_timeout(Some(UDP_IDLE));
                let (Ok(reader), Ok(back), Ok(kept)) = (up.try_clone(), socket.try_clone(), up.try_clone()) else {
                    continue;
                };
                let sessions = sessions.clone();
                std::thread::spawn(move || {
                    let mut reply = vec![0u8; 65_536];
                    while let Ok(m) = reader.recv(&mut reply) {
                        let _ = back.send_to(&reply[..m], client);
                    }
                    sessions.lock().expect("sessions lock").remove(&client);
                });
                open.insert(client, kept);
                up
            }
        };
        let _ = upstream.send(&buf[..n]);
    }
}

/// How the shim treats the container's streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// The log file rotates at this size...
    pub log_max_bytes: u64,
    /// ... and this many files are kept, the current one included.
    pub log_files: u32,
    /// Keep the container's standard input open (nothing is ever written to it).
    pub interactive: bool,
}

impl Default for Options {
    fn default() -> Self {
        let log = crate::runtime::LogSpec::default();
        Options { log_max_bytes: log.max_bytes, log_files: log.files, interactive: false }
    }
}

/// What `exit.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub code: i64,
    pub oom_killed: bool,
    /// The runtime's complaint when the container could not start.
    pub error: Option<String>,
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: String,
    pub log: String,
    pub time: f64,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A log file that rotates itself: `log.json`, then `log.json.1` .. `log.json.N`, N being
/// one less than the files kept (with one file, the log starts over).
struct Log {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    files: u32,
}

impl Log {
    fn open(path: PathBuf, max_bytes: u64, files: u32) -> io::Result<Log> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Log { path, file, size, max_bytes, files: files.max(1) })
    }

    fn write(&mut self, line: &LogLine) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        if self.size + bytes.len() as u64 > self.max_bytes && self.size > 0 {
            let older = self.files - 1;
            for n in (1..older).rev() {
                let _ =
                    fs::rename(format!("{}.{n}", self.path.display()), format!("{}.{}", self.path.display(), n + 1));
            }
            if older > 0 {
                fs::rename(&self.path, format!("{}.1", self.path.display()))?;
            } else {
                fs::remove_file(&self.path)?;
            }
            *self = Log::open(self.path.clone(), self.max_bytes, self.files)?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

fn pump(reader: impl Read, stream: &'static str, log: Arc<Mutex<Log>>) {
    let mut lines = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line =
                    LogLine { stream: stream.into(), log: String::from_utf8_lossy(&buf).into_owned(), time: now() };
                if let Ok(mut log) = log.lock() {
                    let _ = log.write(&line);
                }
            }
        }
    }
}

/// Whether the container's memory cgroup recorded an OOM kill (cgroup v1 or v2).
pub fn oom_killed(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let count = |file: PathBuf, key: &str| {
        fs::read_to_string(file)
            .ok()
            .and_then(|text| text.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse::<u64>().ok())))
            .unwrap_or(0)
    };
    count(Path::new("/sys/fs/cgroup/memory").join(rel).join("memory.oom_control"), "oom_kill ")
        + count(Path::new("/sys/fs/cgroup").join(rel).join("memory.events"), "oom_kill ")
        > 0
}

/// Docker's health rules: failures during the start period do not count; a success makes
/// the container healthy; `retries` failures in a row make it unhealthy.
#[derive(Debug, Default)]
pub struct HealthState {
    pub healthy: Option<bool>,
    failures: i64,
}

impl HealthState {
    pub fn record(&mut self, passed: bool, in_start_period: bool, retries: i64) {
        if passed {
            self.failures = 0;
            self.healthy = Some(true);
        } else if !in_start_period {
            self.failures += 1;
            if self.failures >= retries.max(1) {
                self.healthy = Some(false);
            }
        }
    }
}

/// Runs the health check until the container exits, writing the verdict to `health.json`.
fn health_loop(
    c: &Created<'_>,
    pid: libc::pid_t,
    check: crate::runtime::HealthSpec,
    done: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let started = std::time::Instant::now();
    let mut state = HealthState::default();
    let args: Vec<String> = match check.test.first().map(String::as_str) {
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), check.test[1..].join(" ")],
        Some("CMD") => check.test[1..].to_vec(),
        _ => check.test.clone(),
    };
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(check.interval.max(std::time::Duration::from_millis(100)));
        if done.load(Ordering::SeqCst) {
            return;
        }
        let command = if c.runtime.is_builtin() {
            super::native::exec_command(c.bundle, pid as u32, &args)
        } else {
            let mut command = c.runtime.command();
            command.arg("exec").arg(c.id).args(&args);
            Ok(command)
        };
        let passed = match command
            .and_then(|mut command| command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn())
        {
            Err(_) => false,
            Ok(mut child) => {
                let deadline = std::time::Instant::now() + check.timeout.max(std::time::Duration::from_millis(100));
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break status.success(),
                        Ok(None) if std::time::Instant::now() < deadline => {
                            std::thread::sleep(std::time::Duration::from_millis(10))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break false;
                        }
                    }
                }
            }
        };
        state.record(passed, started.elapsed() < check.start_period, check.retries);
        if let Some(healthy) = state.healthy {
            let tmp = c.bundle.join("health.json.tmp");
            if fs::write(&tmp, serde_json::json!({"healthy": healthy}).to_string()).is_ok() {
                let _ = fs::rename(&tmp, c.bundle.join(HEALTH_FILE));
            }
        }
    }
}

/// Waits for process `pid` (a child of the shim, or an orphan it adopted as subreaper) and
/// returns its exit code as Docker reports it (128 + signal when killed).
fn wait_pid(pid: libc::pid_t) -> i64 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return i64::from(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return 128 + i64::from(libc::WTERMSIG(status));
            }
            continue;
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // Not ours after all: watch it until it is gone; its code is unknown.
        // SAFETY: kill with signal 0 only checks that the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        return -1;
    }
}

/// The shim's main: creates container `id` from `bundle` with `runtime` (`runtime create`:
/// namespaces, cgroup and mounts set up, the process waiting to exec), stays its parent while
/// the driver starts it with `runtime start`, relays its output to the log and records its
/// exit. Creating ahead of the start keeps runc's setup off the start's critical path.
pub fn run(runtime: &RuntimeCommand, id: &str, bundle: &Path, cgroups_path: &str) -> io::Result<()> {
    // SAFETY: setsid has no preconditions; failing (already a leader) is harmless.
    unsafe { libc::setsid() };
    // The container's init is a child of `runtime create`; when that returns, the init is
    // re-parented to the shim, which can then wait for it.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let options: Options =
        fs::read(bundle.join(OPTIONS_FILE)).ok().and_then(|raw| serde_json::from_slice(&raw).ok()).unwrap_or_default();
    let log = Arc::new(Mutex::new(Log::open(bundle.join(LOG_FILE), options.log_max_bytes, options.log_files)?));
    let never_ran = |why: String| write_exit(bundle, &Exit { code: 128, oom_killed: false, error: Some(why) });
    let created = Created { runtime, id, bundle, cgroups_path };
    if runtime.is_builtin() {
        return match run_builtin(&created, &options, log) {
            Ok(exit) => write_exit(bundle, &exit),
            Err(why) => never_ran(why),
        };
    }
    if let Err(e) = forward_ports(bundle) {
        return never_ran(format!("publishing ports: {e}"));
    }
    let console = match terminal(bundle).then(|| Console::listen(&console_socket())).transpose() {
        Ok(c) => c,
        Err(e) => return never_ran(format!("the console socket: {e}")),
    };
    let pid_file = bundle.join(PID_FILE);
    let _ = fs::remove_file(&pid_file);
    let mut command = runtime.command();
    command.args(["create", "--bundle"]).arg(bundle).arg("--pid-file").arg(&pid_file);
    if let Some(c) = &console {
        command.arg("--console-socket").arg(&c.path);
    }
    let stdin = if options.interactive { Stdio::piped() } else { Stdio::null() };
    let exit = match command.arg(id).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Err(e) => Exit { code: 127, oom_killed: false, error: Some(format!("{}: {e}", runtime.program)) },
        Ok(child) => supervise(created, child, log, console)?,
    };
    write_exit(bundle, &exit)
}

/// What `runtime create` was asked to create.
struct Created<'a> {
    runtime: &'a RuntimeCommand,
    id: &'a str,
    bundle: &'a Path,
    cgroups_path: &'a str,
}

/// Relays the output of `runtime create`'s container to the log and waits for its exit.
fn supervise(
    c: Created<'_>,
    mut child: std::process::Child,
    log: Arc<Mutex<Log>>,
    console: Option<Console>,
) -> io::Result<Exit> {
    // The container inherits these pipes from `runtime create`: they carry its output
    // (with a terminal, only the runtime's), and its input, kept open while it runs.
    let _stdin = child.stdin.take();
    let (out, err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let pumps = Pumps::start(out, err, log, console);
    let created = child.wait()?;
    // The runtime has handed the terminal over (or never will): the path can go.
    let _ = fs::remove_file(console_socket());
    let pid = fs::read_to_string(c.bundle.join(PID_FILE)).ok().and_then(|p| p.trim().parse::<libc::pid_t>().ok());
    let (true, Some(pid)) = (created.success(), pid) else {
        pumps.join();
        let code = created.code().map(i64::from).unwrap_or(-1);
        // runc said why on stderr, which went to the log; the last line names it.
        let why =
            last_log_line(c.bundle).unwrap_or_else(|| format!("{} could not create the container", c.runtime.program));
        return Ok(Exit { code, oom_killed: false, error: Some(why) });
    };
    Ok(follow(&c, pid, pumps))
}

/// The berth runtime's way: the shim (one thread so far) creates the container itself, then
/// publishes its ports and follows it as it follows runc's. `Err` says why it never ran.
fn run_builtin(c: &Created<'_>, options: &Options, log: Arc<Mutex<Log>>) -> Result<Exit, String> {
    let console = terminal(c.bundle)
        .then(|| Console::listen(&console_socket()))
        .transpose()
        .map_err(|e| format!("the console socket: {e}"))?;
    let path = console.as_ref().map(|c| c.path.clone());
    let created = super::native::create(c.bundle, path.as_deref(), options.interactive).map_err(|e| e.to_string())?;
    let pid = created.pid as libc::pid_t;
    let recorded = forward_ports(c.bundle).map_err(|e| format!("publishing ports: {e}")).and_then(|()| {
        let tmp = c.bundle.join("container.pid.tmp");
        fs::write(&tmp, pid.to_string())
            .and_then(|()| fs::rename(&tmp, c.bundle.join(PID_FILE)))
            .map_err(|e| format!("recording the pid: {e}"))
    });
    if let Err(why) = recorded {
        let _ = super::native::kill(created.pid, libc::SIGKILL);
        wait_pid(pid);
        let _ = super::native::delete(c.bundle, c.cgroups_path);
        return Err(why);
    }
    // Kept open while the container runs, as with runc.
    let _stdin = created.stdin;
    let pumps = Pumps::start(created.stdout, created.stderr, log, console);
    let _ = fs::remove_file(console_socket());
    Ok(follow(c, pid, pumps))
}

/// The threads that copy a container's output to its log.
struct Pumps {
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pumps {
    fn start(
        out: impl Read + Send + 'static,
        err: impl Read + Send + 'static,
        log: Arc<Mutex<Log>>,
        console: Option<Console>,
    ) -> Pumps {
        let (l1, l2) = (log.clone(), log.clone());
        let mut threads = vec![
            std::thread::spawn(move || pump(out, "stdout", l1)),
            std::thread::spawn(move || pump(err, "stderr", l2)),
        ];
        if let Some(console) = console {
            threads.push(std::thread::spawn(move || {
                if let Ok(master) = console.accept() {
                    pump(File::from(master), "stdout", log);
                }
            }));
        }
        Pumps { threads }
    }

    fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Runs the health check, if any, and waits for the container's process `pid` to end.
fn follow(c: &Created<'_>, pid: libc::pid_t, pumps: Pumps) -> Exit {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let check: Option<crate::runtime::HealthSpec> =
        fs::read(c.bundle.join(HEALTHCHECK_FILE)).ok().and_then(|raw| serde_json::from_slice(&raw).ok());
    if let Some(check) = check {
        let (runtime, id, bundle, cgroups_path, done) =
            (c.runtime.clone(), c.id.to_string(), c.bundle.to_path_buf(), c.cgroups_path.to_string(), done.clone());
        std::thread::spawn(move || {
            let c = Created { runtime: &runtime, id: &id, bundle: &bundle, cgroups_path: &cgroups_path };
            health_loop(&c, pid, check, done)
        });
    }
    let code = wait_pid(pid);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    pumps.join();
    Exit { code, oom_killed: oom_killed(c.cgroups_path), error: None }
}

/// Writes `exit.json` whole (through a temporary file).
fn write_exit(bundle: &Path, exit: &Exit) -> io::Result<()> {
    let tmp = bundle.join("exit.json.tmp");
    fs::write(&tmp, serde_json::to_vec(exit).map_err(io::Error::other)?)?;
    fs::rename(tmp, bundle.join(EXIT_FILE))
}

/// Whether the bundle asks for a terminal.
fn terminal(bundle: &Path) -> bool {
    let config: Option<serde_json::Value> =
        fs::read(bundle.join("config.json")).ok().and_then(|raw| serde_json::from_slice(&raw).ok());
    config.is_some_and(|c| c["process"]["terminal"] == true)
}

/// The socket the runtime sends a terminal's master end to (`--console-socket`).
struct Console {
    path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl Console {
    fn listen(path: &Path) -> io::Result<Console> {
        let _ = fs::remove_file(path);
        Ok(Console { path: path.to_path_buf(), listener: std::os::unix::net::UnixListener::bind(path)? })
    }

    /// Waits for the runtime and takes the descriptor it passes (SCM_RIGHTS).
    fn accept(self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let (stream, _) = self.listener.accept()?;
        let _ = fs::remove_file(&self.path);
        let mut name = [0u8; 256];
        let mut iov = libc::iovec { iov_base: name.as_mut_ptr().cast(), iov_len: name.len() };
        // Room for one descriptor's control message, aligned as cmsghdr wants.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; zeroed is a valid empty header, filled in below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at buffers that live through the call.
        if unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: CMSG_FIRSTHDR reads the header recvmsg filled in.
        let header = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        // SAFETY: a non-null header lies within `control`; an SCM_RIGHTS message holds an fd.
        unsafe {
            if header.is_null() || (*header).cmsg_level != libc::SOL_SOCKET || (*header).cmsg_type != libc::SCM_RIGHTS {
                return Err(io::Error::other("the runtime sent no terminal"));
            }
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<libc::c_int>());
            Ok(std::os::fd::OwnedFd::from_raw_fd(fd))
        }
    }
}

/// The text of the last line in a container's log, if any.
fn last_log_line(bundle: &Path) -> Option<String> {
    let text = fs::read_to_string(bundle.join(LOG_FILE)).ok()?;
    let line: LogLine = serde_json::from_str(text.lines().last()?).ok()?;
    Some(line.log.trim().to_string()).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_docker_rules() {
        let mut h = HealthState::default();
        h.record(false, true, 2);
        h.record(false, true, 2);
        assert_eq!(h.healthy, None, "failures in the start period do not count");
        h.record(false, false, 2);
        assert_eq!(h.healthy, None);
        h.record(false, false, 2);
        assert_eq!(h.healthy, Some(false), "retries failures in a row");
        h.record(true, false, 2);
        assert_eq!(h.healthy, Some(true));
        h.record(false, false, 2);
        assert_eq!(h.healthy, Some(true), "one failure is not enough");
    }

    #[test]
    fn the_log_rotates_and_keeps_a_bounded_history() {
        for (max_bytes, files) in [(10 << 20, 3u32), (64 << 10, 2), (4 << 10, 1)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(LOG_FILE);
            let mut log = Log::open(path.clone(), max_bytes, files).unwrap();
            let line = LogLine { stream: "stdout".into(), log: "x".repeat(1024), time: 0.0 };
            let lines = (u64::from(files) + 2) * (max_bytes / 1024 + 1);
            for _ in 0..lines {
                log.write(&line).unwrap();
            }
            assert!(fs::metadata(&path).unwrap().len() <= max_bytes);
            for n in 1..files {
                assert!(Path::new(&format!("{}.{n}", path.display())).exists(), "{files} files: .{n}");
            }
            assert!(!Path::new(&format!("{}.{files}", path.display())).exists(), "{files} files in all");
        }
    }

    #[test]
    fn options_default_to_dockers_json_file_settings() {
        let o: Options = serde_json::from_str("{}").unwrap();
        assert_eq!(o, Options { log_max_bytes: 10 << 20, log_files: 3, interactive: false });
    }
}
