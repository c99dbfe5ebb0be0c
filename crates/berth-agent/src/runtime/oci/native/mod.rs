//! The berth runtime: Berth's own OCI runtime for the bundles it writes, run inside the
//! container's shim instead of as a runc process. runc's create is two executions of a Go
//! program (`runc create` and its re-executed init), about 45 ms of cpu here; the shim,
//! already forked from the zygote, instead clones the container's process itself with its
//! namespaces, and that process builds its root and waits on the exec fifo as runc's init
//! does. The driver starts it the same way (opening the fifo), stops it with a signal to its
//! pid and removes it with its cgroup.
//!
//! It does what Berth's bundles ask ([`plan`]): new or joined namespaces (mount, UTS, IPC,
//! pid, network, cgroup), the bundle's mounts, `/dev` with the usual nodes, masked and
//! read-only paths, a read-only root, sysctls, the user, capabilities, rlimits and
//! `noNewPrivileges`, a terminal, and cgroup limits with runc's device rules ([`cgroups`]).
//! It refuses the rest with the reason: seccomp, user namespaces, AppArmor and SELinux,
//! hooks, and hosts with cgroup v2 alone (device rules there need eBPF).

pub mod cgroups;
mod init;
pub mod options;
pub mod paths;
pub mod plan;

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// The runtime's name, as `--fargate-runtime` takes it.
pub const NAME: &str = "berth";
/// The exec fifo in the bundle: the container's process waits until the driver opens it.
pub const FIFO: &str = "exec.fifo";

/// A container made and waiting for its start.
pub struct Created {
    pub pid: u32,
    /// Its standard output and error (none with a terminal: that goes to the console).
    pub stdout: File,
    pub stderr: File,
    /// Its standard input, with `interactive`.
    pub stdin: Option<File>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors into a local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn load(bundle: &Path) -> io::Result<Spec> {
    Spec::load(bundle.join("config.json")).map_err(|e| io::Error::other(format!("{}: {e}", bundle.display())))
}

/// Whether this host can run the berth runtime; why not otherwise.
pub fn check() -> Result<(), String> {
    usable_hierarchies().map(drop)
}

/// The host's cgroup hierarchies, if the berth runtime can work with them.
fn usable_hierarchies() -> Result<Vec<cgroups::Hierarchy>, String> {
    let hierarchies = cgroups::host_hierarchies().map_err(|e| format!("reading the cgroup mounts: {e}"))?;
    if cgroups::unified_only(&hierarchies) {
        return Err("the berth runtime needs the cgroup v1 devices controller for its device rules; \
                    this host has cgroup v2 alone (use runc)"
            .into());
    }
    Ok(hierarchies)
}

/// Creates the container of `bundle`: its cgroup, its process (cloned from this one, which
/// must have a single thread) set up and waiting on the exec fifo. `console` is where a
/// terminal's master end goes. Undone on failure.
pub fn create(bundle: &Path, console: Option<&Path>, interactive: bool) -> io::Result<Created> {
    if !single_threaded() {
        return Err(io::Error::other("the berth runtime creates containers from a process with one thread"));
    }
    let spec = load(bundle)?;
    let plan = plan::plan(&spec, bundle).map_err(io::Error::other)?;
    let hierarchies = usable_hierarchies().map_err(io::Error::other)?;
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let settings = cgroups::settings(resources, false).map_err(io::Error::other)?;
    let cgroup = cgroups::Cgroup::at(&hierarchies, &plan.cgroups_path);
    cgroup.create(&settings).inspect_err(|_| {
        let _ = cgroup.destroy();
    })?;
    let made = spawn(bundle, &plan, console, interactive, hierarchies, &cgroup);
    if made.is_err() {
        let _ = cgroup.destroy();
        let _ = std::fs::remove_file(bundle.join(FIFO));
    }
    made
}

fn spawn(
    bundle: &Path,
    plan: &plan::Plan,
    console: Option<&Path>,
    interactive: bool,
    hierarchies: Vec<cgroups::Hierarchy>,
    cgroup: &cgroups::Cgroup,
) -> io::Result<Created> {
    let fifo_path = bundle.join(FIFO);
    let _ = std::fs::remove_file(&fifo_path);
    let c = std::ffi::CString::new(fifo_path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: mkfifo with a NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o622) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // Writable by the container's user whatever it is (the umask took that away).
    std::fs::set_permissions(&fifo_path, std::os::unix::fs::PermissionsExt::from_mode(0o622))?;
    let fifo = init::open_fifo(&fifo_path)?;
    let (go_read, go_write) = pipe()?;
    let (report_read, report_write) = pipe()?;
    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let (stdin_theirs, stdin_ours) = if interactive {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (OwnedFd::from(File::open("/dev/null")?), None)
    };
    let console = console.filter(|_| plan.process.terminal).map(UnixStream::connect).transpose()?;
    if let Some(path) = &plan.join_pid {
        let ns = File::open(path)?;
        // SAFETY: setns with an open namespace file: this process's children land in it.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
            return Err(io::Error::other(format!("joining {}: {}", path.display(), io::Error::last_os_error())));
        }
    }
    let shims_ends: Vec<RawFd> = [&go_write, &report_read, &out_read, &err_read]
        .into_iter()
        .map(|f| f.as_raw_fd())
        .chain(stdin_ours.as_ref().map(|f| f.as_raw_fd()))
        .collect();
    let flags = plan.clone_flags as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone without a new stack is fork with namespaces; this process has one thread
    // (the caller's promise), so the child's copy of its memory is consistent.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::other(format!("clone: {}", io::Error::last_os_error())));
    }
    if pid == 0 {
        let channels = init::Channels {
            go: go_read,
            report: report_write,
            stdio: [stdin_theirs, out_write, err_write],
            fifo,
            console,
            hierarchies,
            shims_ends,
        };
        init::run(plan, channels)
    }
    let pid = pid as u32;
    drop((go_read, report_write, stdin_theirs, out_write, err_write, fifo, console));
    let abandon = |why: io::Error| {
        // SAFETY: kill and waitpid on the child just cloned.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
        why
    };
    cgroup.join(pid).map_err(|e| abandon(io::Error::other(format!("joining the cgroup: {e}"))))?;
    io::Write::write_all(&mut File::from(go_write), b"1").map_err(abandon)?;
    let mut answer = String::new();
    File::from(report_read).read_to_string(&mut answer).map_err(abandon)?;
    if answer != "R" {
        let why = if answer.is_empty() { "the container's process ended while being set up".into() } else { answer };
        return Err(abandon(io::Error::other(why)));
    }
    Ok(Created { pid, stdout: File::from(out_read), stderr: File::from(err_read), stdin: stdin_ours.map(File::from) })
}

/// Whether this process has one thread (a clone of it is then a consistent copy).
fn single_threaded() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().any(|l| l.strip_prefix("Threads:").is_some_and(|n| n.trim() == "1"))
}

/// Sends `signal` to the container's process (`pid`).
pub fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes the container of `bundle`: every process in its cgroup killed, the cgroup and the
/// exec fifo removed. Nothing there is fine.
pub fn delete(bundle: &Path, cgroups_path: &str) -> io::Result<()> {
    let hierarchies = cgroups::host_hierarchies()?;
    let _ = std::fs::remove_file(bundle.join(FIFO));
    cgroups::Cgroup::at(&hierarchies, cgroups_path).destroy()
}

/// A command that runs `args` in the running container `pid` of `bundle`, as its process
/// runs: in its namespaces and cgroup, as its user, with its capabilities and environment.
pub fn exec_command(bundle: &Path, pid: u32, args: &[String]) -> io::Result<std::process::Command> {
    let Some(program) = args.first() else { return Err(io::Error::other("nothing to execute")) };
    let spec = load(bundle)?;
    let plan = plan::plan(&spec, bundle).map_err(io::Error::other)?;
    let hierarchies = cgroups::host_hierarchies()?;
    let procs: Vec<File> = cgroups::Cgroup::at(&hierarchies, &plan.cgroups_path)
        .procs_files()
        .iter()
        .map(|p| std::fs::OpenOptions::new().write(true).open(p))
        .collect::<io::Result<_>>()?;
    // The mount namespace last: entering it moves the root.
    let mut namespaces = Vec::new();
    for (name, flag) in [
        ("ipc", libc::CLONE_NEWIPC),
        ("uts", libc::CLONE_NEWUTS),
        ("net", libc::CLONE_NEWNET),
        ("cgroup", libc::CLONE_NEWCGROUP),
        ("pid", libc::CLONE_NEWPID),
        ("mnt", libc::CLONE_NEWNS),
    ] {
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let own = PathBuf::from(format!("/proc/self/ns/{name}"));
        // A namespace the container shares with the host is not entered.
        if std::fs::read_link(&path)? != std::fs::read_link(&own)? {
            namespaces.push((File::open(&path)?, flag));
        }
    }
    let last_cap: u32 =
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40);
    let process = plan.process.clone();
    let cwd = std::ffi::CString::new(process.cwd.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    let mut command = std::process::Command::new(program);
    command.args(&args[1..]).env_clear();
    for e in &process.env {
        if let Some((k, v)) = e.to_string_lossy().split_once('=') {
            command.env(k, v);
        }
    }
    let become_user = init::user_step(process);
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe calls on descriptors and buffers prepared here.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            for f in &procs {
                if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (ns, flag) in &namespaces {
                if libc::setns(ns.as_raw_fd(), *flag) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // Only a child enters the pid namespace: fork once more, and this process
            // waits for it and ends with its status, holding nothing the caller waits on.
            match libc::fork() {
                -1 => return Err(io::Error::last_os_error()),
                0 => {}
                child => {
                    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                    let mut status = 0;
                    while libc::waitpid(child, &mut status, 0) < 0 {
                        if *libc::__errno_location() != libc::EINTR {
                            libc::_exit(127);
                        }
                    }
                    let code =
                        if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
                    libc::_exit(code)
                }
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::chdir(cwd.as_ptr()) < 0 {
                return Err(io::Error::last_os_error());
            }
            become_user(last_cap)
        })
    };
    Ok(command)
}
