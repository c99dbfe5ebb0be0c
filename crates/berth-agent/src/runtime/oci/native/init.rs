//! The container's first process, from the clone to the exec: it waits until the shim has
//! put it in its cgroup, joins and makes its namespaces, builds its root (the bundle's mounts,
//! `/dev`, `pivot_root`, masked and read-only paths), becomes the process's user with its
//! capabilities and limits, says it is ready, and then waits on the exec fifo until the
//! driver starts it, as runc's init does. Any failure before "ready" goes back to the shim as
//! text; after it, to the container's standard error (its log), with exit code 127.
//!
//! It runs in a child cloned from the shim while the shim has one thread, so it may allocate.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::cgroups::Hierarchy;
use super::paths;
use super::plan::{MountStep, Plan, ProcessPlan};

/// What the child talks to the shim and the driver through.
pub struct Channels {
    /// Readable once the shim has put the child in its cgroup (a byte; end of file: give up).
    pub go: OwnedFd,
    /// "R" when ready, else why not.
    pub report: OwnedFd,
    /// The container's standard input, output and error (unless it has a terminal).
    pub stdio: [OwnedFd; 3],
    /// The exec fifo, opened `O_PATH`: the child opens it for writing and blocks there until
    /// the driver opens it for reading (the start).
    pub fifo: OwnedFd,
    /// Where a terminal's master end goes (`process.terminal`).
    pub console: Option<UnixStream>,
    /// The host's cgroup hierarchies, for the container's `/sys/fs/cgroup`.
    pub hierarchies: Vec<Hierarchy>,
    /// The shim's ends of the pipes, which the child's copy of the shim's memory also
    /// holds: closed first, so that the shim's going away reads as the end of `go`.
    pub shims_ends: Vec<RawFd>,
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn check(r: libc::c_int, what: impl FnOnce() -> String) -> io::Result<()> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{}: {e}", what())));
    }
    Ok(())
}

/// `mount(2)`.
fn mount(source: Option<&Path>, target: &Path, kind: Option<&str>, flags: libc::c_ulong, data: &str) -> io::Result<()> {
    let source = source.map(cpath).transpose()?;
    let target_c = cpath(target)?;
    let kind_c = kind.map(|k| CString::new(k).map_err(io::Error::other)).transpose()?;
    let data_c = CString::new(data).map_err(io::Error::other)?;
    // SAFETY: every pointer is a NUL-terminated string that lives through the call, or null.
    let r = unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            kind_c.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
            flags,
            if data.is_empty() { std::ptr::null() } else { data_c.as_ptr().cast() },
        )
    };
    check(r, || format!("mounting {} on {}", kind.unwrap_or("(bind)"), target.display()))
}

/// Makes `dir` and its parents as runc does (mode 0755: the umask is 0 here, so that device
/// nodes get the modes the bundle names).
fn mkdir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)
}

/// Makes an empty file to bind a file over (mode 0644).
fn touch(file: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o644).open(file).map(drop)
}

/// The child's whole life: never returns.
pub fn run(plan: &Plan, channels: Channels) -> ! {
    let Channels { go, report, stdio, fifo, console, hierarchies, shims_ends } = channels;
    for fd in shims_ends {
        // SAFETY: these descriptors belong to the shim's copy of the memory, which this
        // process never uses again.
        unsafe { libc::close(fd) };
    }
    let mut report = fs::File::from(report);
    let mut byte = [0u8; 1];
    if !matches!(fs::File::from(go).read(&mut byte), Ok(1)) {
        // The shim went away before letting it go on.
        // SAFETY: _exit ends the process without running anything of the shim's.
        unsafe { libc::_exit(1) }
    }
    match setup(plan, stdio, console, &hierarchies) {
        Err(e) => {
            let _ = report.write_all(e.to_string().as_bytes());
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
        Ok(program) => {
            let _ = report.write_all(b"R");
            drop(report);
            let code = start(plan, &program, &fifo);
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Everything up to "ready"; the program to execute.
fn setup(
    plan: &Plan,
    stdio: [OwnedFd; 3],
    console: Option<UnixStream>,
    hierarchies: &[Hierarchy],
) -> io::Result<CString> {
    // SAFETY: umask has no preconditions; the modes of the nodes and links made below are
    // then what they say.
    unsafe { libc::umask(0) };
    if !plan.process.terminal {
        for (n, fd) in stdio.iter().enumerate() {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            check(unsafe { libc::dup2(fd.as_raw_fd(), n as RawFd) }, || "the standard streams".into())?;
        }
    }
    drop(stdio);
    for (flag, path) in &plan.join {
        let ns = fs::File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        // SAFETY: setns with an open namespace file and its type.
        check(unsafe { libc::setns(ns.as_raw_fd(), *flag) }, || format!("joining {}", path.display()))?;
    }
    if plan.new_cgroup_ns {
        // SAFETY: unshare takes a flag.
        check(unsafe { libc::unshare(libc::CLONE_NEWCGROUP) }, || "a cgroup namespace".into())?;
    }
    let last_cap: u32 =
        fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40);
    // Nothing mounted in here reaches the host; the host's mounts still reach in.
    mount(None, Path::new("/"), None, libc::MS_SLAVE | libc::MS_REC, "")?;
    mount(Some(&plan.rootfs), &plan.rootfs, None, libc::MS_BIND | libc::MS_REC, "")?;
    for m in &plan.mounts {
        mount_one(&plan.rootfs, m, hierarchies)?;
    }
    if plan.mounts.iter().any(|m| m.destination == Path::new("/dev")) {
        make_dev(plan)?;
    }
    pivot_root(&plan.rootfs)?;
    for (key, value) in &plan.sysctl {
        let file = Path::new("/proc/sys").join(key.replace('.', "/"));
        fs::write(&file, value).map_err(|e| io::Error::new(e.kind(), format!("sysctl {key}: {e}")))?;
    }
    for path in &plan.masked {
        mask(path)?;
    }
    for path in &plan.readonly {
        if path.exists() {
            mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, "")?;
            mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT | libc::MS_RDONLY, "")?;
        }
    }
    if plan.readonly_root {
        mount(None, Path::new("/"), None, libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY, "")?;
    }
    if let Some(name) = &plan.hostname {
        // SAFETY: the name's bytes and length.
        check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }, || "the hostname".into())?;
    }
    // SAFETY: setsid has no preconditions; the child is not a group leader, so it succeeds.
    unsafe { libc::setsid() };
    if plan.process.terminal {
        terminal(console)?;
    }
    limits(&plan.process)?;
    let cwd = cpath(&plan.process.cwd)?;
    // SAFETY: chdir with a NUL-terminated path.
    check(unsafe { libc::chdir(cwd.as_ptr()) }, || format!("the working directory {}", plan.process.cwd.display()))?;
    let program = find_program(&plan.process)?;
    become_user(&plan.process, last_cap)?;
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(plan.process.umask as libc::mode_t) };
    // Nothing of the shim's but the fifo and the report survives the exec.
    // SAFETY: marks descriptors from 3 up close-on-exec.
    check(
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) } as libc::c_int,
        || "closing inherited descriptors".into(),
    )?;
    Ok(program)
}

/// Waits for the start (the fifo), then executes the program; returns only on failure.
fn start(plan: &Plan, program: &CString, fifo: &OwnedFd) -> i32 {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    match fs::OpenOptions::new().write(true).open(&path) {
        Ok(mut f) => {
            let _ = f.write_all(b"0");
        }
        Err(e) => {
            eprintln!("berth runtime: waiting for the start: {e}");
            return 127;
        }
    }
    let args: Vec<*const libc::c_char> =
        plan.process.args.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let env: Vec<*const libc::c_char> =
        plan.process.env.iter().map(|e| e.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    // SAFETY: NULL-terminated arrays of NUL-terminated strings that live through the call.
    unsafe { libc::execve(program.as_ptr(), args.as_ptr(), env.as_ptr()) };
    eprintln!("berth runtime: executing {}: {}", program.to_string_lossy(), io::Error::last_os_error());
    127
}

/// One of the bundle's mounts, made under `root`.
fn mount_one(root: &Path, m: &MountStep, hierarchies: &[Hierarchy]) -> io::Result<()> {
    let dest = paths::resolve(root, &m.destination)?;
    let flags = m.options.flags;
    if m.kind == "cgroup" {
        return mount_cgroups(&dest, flags, hierarchies);
    }
    if m.options.is_bind() {
        let source = Path::new(&m.source);
        let meta = fs::metadata(source).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", source.display())))?;
        if meta.is_dir() {
            mkdir_all(&dest)?;
        } else {
            if let Some(parent) = dest.parent() {
                mkdir_all(parent)?;
            }
            if !dest.exists() {
                touch(&dest)?;
            }
        }
        mount(Some(source), &dest, None, flags & (libc::MS_BIND | libc::MS_REC), "")?;
        if m.options.remount_flags() != 0 {
            let again = libc::MS_BIND | libc::MS_REMOUNT | (flags & libc::MS_REC) | m.options.remount_flags();
            mount(None, &dest, None, again, "")?;
        }
    } else {
        mkdir_all(&dest)?;
        let made = mount(Some(Path::new(&m.source)), &dest, Some(&m.kind), flags, &m.options.data);
        match (made, m.kind.as_str()) {
            (Ok(()), _) => {}
            // Without a network namespace of its own (host mode) the kernel refuses a sysfs
            // of the container's own; with the host's IPC namespace, an mqueue. The host's
            // are bound instead, as runc does.
            (Err(e), "sysfs" | "mqueue") if e.raw_os_error() == Some(libc::EPERM) => {
                let host = if m.kind == "sysfs" { "/sys" } else { "/dev/mqueue" };
                mount(Some(Path::new(host)), &dest, None, libc::MS_BIND | libc::MS_REC, "")?;
                let again = libc::MS_BIND | libc::MS_REMOUNT | (flags & !libc::MS_REC);
                mount(None, &dest, None, again, "")?;
            }
            (Err(e), _) => return Err(e),
        }
    }
    for p in &m.options.propagation {
        mount(None, &dest, None, *p, "")?;
    }
    Ok(())
}

/// The container's `/sys/fs/cgroup`: with cgroup v1, a tmpfs with each hierarchy mounted
/// in it (seen from the container's cgroup namespace: its own cgroup is the root); with v2
/// alone, the one hierarchy.
fn mount_cgroups(dest: &Path, flags: libc::c_ulong, hierarchies: &[Hierarchy]) -> io::Result<()> {
    let flags = flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mkdir_all(dest)?;
    if hierarchies.len() == 1 && hierarchies[0].unified {
        return mount(Some(Path::new("cgroup2")), dest, Some("cgroup2"), flags, "");
    }
    mount(Some(Path::new("tmpfs")), dest, Some("tmpfs"), flags & !libc::MS_RDONLY, "mode=755")?;
    for h in hierarchies {
        let Some(name) = h.mountpoint.file_name() else { continue };
        let at = dest.join(name);
        mkdir_all(&at)?;
        if h.unified {
            mount(Some(Path::new("cgroup2")), &at, Some("cgroup2"), flags, "")?;
        } else {
            mount(Some(Path::new("cgroup")), &at, Some("cgroup"), flags, &h.options)?;
        }
    }
    // The host's aliases (`cpu,cpuacct -> cpu`), where it has them.
    for entry in fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        if let Ok(target) = fs::read_link(entry.path()) {
            let _ = std::os::unix::fs::symlink(target, dest.join(entry.file_name()));
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        mount(None, dest, None, libc::MS_REMOUNT | flags, "mode=755")?;
    }
    Ok(())
}

/// Device nodes and the usual links in the container's own `/dev` (a tmpfs).
fn make_dev(plan: &Plan) -> io::Result<()> {
    for d in &plan.devices {
        let at = paths::resolve(&plan.rootfs, &d.path)?;
        if let Some(parent) = at.parent() {
            mkdir_all(parent)?;
        }
        let c = cpath(&at)?;
        let dev = libc::makedev(d.major, d.minor);
        // SAFETY: mknod and chown with a NUL-terminated path and plain integers.
        let made = unsafe { libc::mknod(c.as_ptr(), d.kind | d.mode, dev) };
        check(made, || format!("making {}", d.path.display()))?;
        // SAFETY: as above.
        check(unsafe { libc::chown(c.as_ptr(), d.uid, d.gid) }, || format!("owning {}", d.path.display()))?;
    }
    let dev = plan.rootfs.join("dev");
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    for (target, name) in links {
        match std::os::unix::fs::symlink(target, dev.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// `pivot_root` into `rootfs` with the old root stacked beneath and then detached.
fn pivot_root(rootfs: &Path) -> io::Result<()> {
    let old = fs::File::open("/")?;
    let new = fs::File::open(rootfs)?;
    let dot = c".";
    // SAFETY: fchdir, pivot_root, umount2 and chdir with open descriptors and literal paths.
    unsafe {
        check(libc::fchdir(new.as_raw_fd()), || "entering the root".into())?;
        check(libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int, || "pivot_root".into())?;
        check(libc::fchdir(old.as_raw_fd()), || "the old root".into())?;
    }
    // The old root is a slave of the host's: its unmount must not reach the host.
    mount(None, Path::new("."), None, libc::MS_SLAVE | libc::MS_REC, "")?;
    // SAFETY: as above.
    unsafe {
        check(libc::umount2(dot.as_ptr(), libc::MNT_DETACH), || "detaching the old root".into())?;
        check(libc::chdir(c"/".as_ptr()), || "the new root".into())?;
    }
    Ok(())
}

/// Hides `path`: an empty read-only tmpfs over a directory, `/dev/null` over a file.
fn mask(path: &Path) -> io::Result<()> {
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => mount(Some(Path::new("tmpfs")), path, Some("tmpfs"), libc::MS_RDONLY, ""),
        Ok(_) => mount(Some(Path::new("/dev/null")), path, None, libc::MS_BIND, ""),
    }
}

/// A terminal of the container's own devpts: the master end goes to the shim through the
/// console socket, the slave end becomes the standard streams and the controlling terminal.
fn terminal(console: Option<UnixStream>) -> io::Result<()> {
    let console = console.ok_or_else(|| io::Error::other("a terminal without a console socket"))?;
    let master = fs::OpenOptions::new().read(true).write(true).open("/dev/ptmx")?;
    let mut unlock: libc::c_int = 0;
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCSPTLCK reads an int, TIOCGPTN writes an unsigned int, both locals.
    unsafe {
        check(libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock), || "unlocking the terminal".into())?;
        check(libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number), || "the terminal's number".into())?;
    }
    let slave = fs::OpenOptions::new().read(true).write(true).open(format!("/dev/pts/{number}"))?;
    send_fd(&console, master.as_raw_fd())?;
    drop(master);
    let console_path = Path::new("/dev/console");
    if !console_path.exists() {
        touch(console_path)?;
    }
    mount(Some(Path::new(&format!("/dev/pts/{number}"))), console_path, None, libc::MS_BIND, "")?;
    // SAFETY: TIOCSCTTY and dup2 on descriptors this process owns.
    unsafe {
        check(libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0), || "the controlling terminal".into())?;
        for n in 0..3 {
            check(libc::dup2(slave.as_raw_fd(), n), || "the terminal's streams".into())?;
        }
    }
    Ok(())
}

/// Passes descriptor `fd` over `socket` (SCM_RIGHTS), as runc does to `--console-socket`.
fn send_fd(socket: &UnixStream, fd: RawFd) -> io::Result<()> {
    let name = b"/dev/ptmx";
    let mut iov = libc::iovec { iov_base: name.as_ptr() as *mut _, iov_len: name.len() };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: the header lies within `control`, which is large enough for one descriptor.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd);
        check(libc::sendmsg(socket.as_raw_fd(), &msg, 0) as libc::c_int, || "sending the terminal".into())
    }
}

/// rlimits and the OOM score.
fn limits(p: &ProcessPlan) -> io::Result<()> {
    for (resource, soft, hard) in &p.rlimits {
        let limit = libc::rlimit { rlim_cur: *soft, rlim_max: *hard };
        // SAFETY: setrlimit reads a local struct.
        check(unsafe { libc::setrlimit(*resource as _, &limit) }, || format!("rlimit {resource}"))?;
    }
    if let Some(score) = p.oom_score_adj {
        fs::write("/proc/self/oom_score_adj", score.to_string())?;
    }
    Ok(())
}

/// `args[0]` as a path: itself when it has a slash, else the first executable of that name
/// on the process's `PATH`.
fn find_program(p: &ProcessPlan) -> io::Result<CString> {
    let name = p.args[0].to_string_lossy().into_owned();
    let executable = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if name.contains('/') {
        Some(PathBuf::from(&name)).filter(|p| executable(p))
    } else {
        p.path.split(':').map(|dir| Path::new(dir).join(&name)).find(|p| executable(p))
    };
    let found = found.ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("exec: {name:?}: executable file not found in $PATH"))
    })?;
    cpath(&found)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The process's user and groups, and its capabilities: the bounding set first (while it
/// may still drop them), the user kept from losing the permitted set, then the sets. Raw
/// system calls, no allocation: this also runs between fork and exec in a process with
/// threads (an exec into a running container); a failure names its step.
fn apply_user(p: &ProcessPlan, last_cap: u32) -> Result<(), (&'static str, io::Error)> {
    let caps = p.capabilities;
    let fail = |what: &'static str| (what, io::Error::last_os_error());
    let half = |bits: u64, high: bool| if high { (bits >> 32) as u32 } else { bits as u32 };
    let data: [CapData; 2] = [false, true].map(|high| CapData {
        effective: half(caps.effective, high),
        permitted: half(caps.permitted, high),
        inheritable: half(caps.inheritable, high),
    });
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: prctl and the raw setgroups, setresgid, setresuid and capset calls take plain
    // integers and local buffers that outlive them.
    unsafe {
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
            return Err(fail("keeping capabilities"));
        }
        for cap in 0..=last_cap.min(63) {
            if caps.bounding & (1 << cap) == 0 && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) < 0
            {
                return Err(fail("dropping a capability from the bounding set"));
            }
        }
        if libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr()) < 0 {
            return Err(fail("the additional groups"));
        }
        if libc::syscall(libc::SYS_setresgid, p.gid, p.gid, p.gid) < 0 {
            return Err(fail("the group"));
        }
        if libc::syscall(libc::SYS_setresuid, p.uid, p.uid, p.uid) < 0 {
            return Err(fail("the user"));
        }
        if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) < 0 {
            return Err(fail("the capabilities"));
        }
        if libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 {
            return Err(fail("keeping capabilities"));
        }
        for cap in 0..=last_cap.min(63) {
            let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
            if caps.ambient & (1 << cap) != 0
                && libc::prctl(libc::PR_CAP_AMBIENT, raise, cap as libc::c_ulong, 0, 0) < 0
            {
                return Err(fail("an ambient capability"));
            }
        }
        if p.no_new_privileges && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            return Err(fail("no new privileges"));
        }
    }
    Ok(())
}

fn become_user(p: &ProcessPlan, last_cap: u32) -> io::Result<()> {
    apply_user(p, last_cap).map_err(|(what, e)| io::Error::new(e.kind(), format!("{what}: {e}")))
}

/// [`apply_user`] for a process that execs into a running container: called with the
/// kernel's last capability number, between fork and exec.
pub fn user_step(p: ProcessPlan) -> impl Fn(u32) -> io::Result<()> + Send + Sync + 'static {
    move |last_cap| apply_user(&p, last_cap).map_err(|(_, e)| e)
}

/// Opens what `Channels::fifo` holds: the fifo at `path`, without opening it for I/O.
pub fn open_fifo(path: &Path) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: open with a NUL-terminated path; the result is a fresh descriptor or -1.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    check(fd, || format!("the exec fifo {}", path.display()))?;
    // SAFETY: a descriptor open() just returned, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
