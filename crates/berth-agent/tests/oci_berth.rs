//! The berth runtime on real containers: the busybox test image on an overlay rootfs, a
//! bundle from berth-agent's builder, created by [`native::create`] in this process (a test
//! without the harness, so it has the one thread the runtime needs), started through its
//! exec fifo, entered with [`native::exec_command`], and removed with its cgroup. Needs root.

mod common;

use std::io::Read;
use std::path::Path;

use berth_agent::runtime::ContainerSpec;
use berth_agent::runtime::oci::{bundle, native, rootfs};
use berth_image::store::ImageConfig;

struct Container {
    dir: std::path::PathBuf,
    cgroups_path: String,
}

/// Writes the bundle of `spec` over `layer` in `dir`.
fn bundle_for(spec: &ContainerSpec, layer: &Path, dir: &Path) -> Container {
    let fs = rootfs::mount(std::slice::from_ref(&layer.to_path_buf()), dir).unwrap();
    let image = ImageConfig { env: vec!["PATH=/bin".into()], ..Default::default() };
    let cgroups_path = format!("/berth-test/{}", spec.name);
    let config = bundle::runtime_spec(spec, &image, &fs.rootfs, &cgroups_path, &Default::default()).unwrap();
    config.save(dir.join("config.json")).unwrap();
    Container { dir: dir.to_path_buf(), cgroups_path }
}

/// Starts the container as the driver does (reads its byte from the exec fifo), within 10 s:
/// a process that died before reaching the fifo would otherwise block this forever.
fn start(c: &Container, created: &mut native::Created) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let fifo =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(c.dir.join(native::FIFO)).unwrap();
    let mut poll = libc::pollfd { fd: fifo.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one descriptor in a local struct.
    let ready = unsafe { libc::poll(&mut poll, 1, 10_000) };
    if ready != 1 {
        let mut err = String::new();
        created.stderr.read_to_string(&mut err).unwrap();
        panic!("the container never reached its exec fifo: {err}");
    }
    let mut byte = [0u8; 1];
    assert_eq!((&fifo).read(&mut byte).unwrap(), 1, "the container's process wrote its byte to the fifo");
    std::fs::remove_file(c.dir.join(native::FIFO)).unwrap();
}

fn wait(pid: u32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on this process's child, into a local.
    assert_eq!(unsafe { libc::waitpid(pid as i32, &mut status, 0) }, pid as i32);
    if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) }
}

fn cgroup_dir(c: &Container) -> std::path::PathBuf {
    Path::new("/sys/fs/cgroup/memory").join(c.cgroups_path.trim_start_matches('/'))
}

fn spec(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        name: format!("berth-test-{}-{name}", std::process::id()),
        network_mode: "bridge".into(),
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        memory: Some(64 << 20),
        cpu_shares: Some(512),
        env: vec!["GREETING=hi".into()],
        ..Default::default()
    }
}

/// Docker's 14 default capabilities, the bundle's, as /proc shows the mask.
const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

fn isolated_and_limited(layer: &Path, dir: &Path) {
    let script = "echo pid=$$; echo host=$(hostname); echo uid=$(id -u); \
        grep -E '^Cap(Eff|Bnd)' /proc/self/status; \
        echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); echo greeting=$GREETING; \
        echo timers=$(wc -c < /proc/timer_list); echo firmware=$(ls /sys/firmware); \
        (echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=written || echo sysrq=refused; \
        echo devs=$(ls /dev); echo net=$(ls /sys/class/net); echo root=$(ls /); \
        busybox mknod /tmp/disk b 8 0; cat /tmp/disk 2>&1 | head -c 200; echo; \
        echo marker > /tmp/marker; exit 3";
    let s = spec("a", script);
    let c = bundle_for(&s, layer, dir);
    let mut created = native::create(&c.dir, None, false).unwrap();
    assert!(cgroup_dir(&c).join("cgroup.procs").exists(), "its cgroup is made before it runs");
    assert_eq!(std::fs::read_to_string(cgroup_dir(&c).join("cgroup.procs")).unwrap().trim(), created.pid.to_string());
    start(&c, &mut created);
    let mut out = String::new();
    created.stdout.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    created.stderr.read_to_string(&mut err).unwrap();
    assert_eq!(wait(created.pid), 3, "stdout: {out}\nstderr: {err}");
    let line = |key: &str| {
        out.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("{key}: {out}")).trim()
    };
    assert_eq!(line("pid"), "1", "its own pid namespace");
    assert_eq!(line("host"), &s.name[..s.name.len().min(63)], "its own hostname");
    assert_eq!(line("uid"), "0");
    assert!(out.contains(&format!("CapEff:\t{DOCKER_DEFAULT_CAPS}")), "{out}");
    assert!(out.contains(&format!("CapBnd:\t{DOCKER_DEFAULT_CAPS}")), "{out}");
    assert_eq!(line("mem"), (64u64 << 20).to_string(), "the memory limit, seen through its cgroup namespace");
    assert_eq!(line("greeting"), "hi");
    assert_eq!(line("timers"), "0", "a masked file is empty");
    assert_eq!(line("firmware"), "", "a masked directory is empty");
    assert_eq!(line("sysrq"), "refused", "read-only paths are read-only");
    for dev in ["null", "zero", "urandom", "tty", "pts", "shm", "mqueue", "fd", "ptmx"] {
        assert!(line("devs").split(' ').any(|d| d == dev), "/dev/{dev}: {out}");
    }
    assert_eq!(line("net"), "lo", "its own network namespace");
    assert!(line("root").split(' ').any(|d| d == "bin") && !line("root").contains("work"), "its own root: {out}");
    assert!(out.contains("Operation not permitted"), "the device rules refuse a disk: {out}");
    assert_eq!(std::fs::read_to_string(c.dir.join("upper/tmp/marker")).unwrap(), "marker\n");
    native::delete(&c.dir, &c.cgroups_path).unwrap();
    assert!(!cgroup_dir(&c).exists(), "its cgroup goes with it");
    rootfs::remove(&c.dir).unwrap();
}

fn another_user_has_no_capabilities(layer: &Path, dir: &Path) {
    let mut s = spec("b", "id -u; id -g; grep CapEff /proc/self/status; touch /bin/mine 2>&1; true");
    s.user = Some("1000:1000".into());
    let c = bundle_for(&s, layer, dir);
    let mut created = native::create(&c.dir, None, false).unwrap();
    start(&c, &mut created);
    let mut out = String::new();
    created.stdout.read_to_string(&mut out).unwrap();
    assert_eq!(wait(created.pid), 0, "{out}");
    assert!(out.starts_with("1000\n1000\n"), "{out}");
    // No ambient capabilities (as Docker gives none): another user than root has none.
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("Permission denied"), "not root: {out}");
    native::delete(&c.dir, &c.cgroups_path).unwrap();
    rootfs::remove(&c.dir).unwrap();
}

fn a_missing_program_fails_the_create_and_leaves_nothing(layer: &Path, dir: &Path) {
    let mut s = spec("c", "");
    s.command = Some(vec!["/no/such/program".into()]);
    let c = bundle_for(&s, layer, dir);
    let err = native::create(&c.dir, None, false).err().expect("no such program").to_string();
    assert!(err.contains("executable file not found"), "{err}");
    assert!(!cgroup_dir(&c).exists(), "the cgroup is removed again");
    assert!(!c.dir.join(native::FIFO).exists());
    rootfs::remove(&c.dir).unwrap();
}

fn exec_enters_the_running_container(layer: &Path, dir: &Path) {
    let mut s = spec("d", "sleep 30");
    s.command = Some(vec!["sleep".into(), "30".into()]);
    let c = bundle_for(&s, layer, dir);
    let mut created = native::create(&c.dir, None, false).unwrap();
    start(&c, &mut created);
    let script = "echo pid=$$; echo init=$(cat /proc/1/cmdline); echo host=$(hostname); grep CapEff /proc/self/status; \
                  echo cgroup=$(cat /proc/self/cgroup | grep memory)";
    let out = native::exec_command(&c.dir, created.pid, &["sh".into(), "-c".into(), script.into()])
        .unwrap()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("init=sleep30"), "the container's pid namespace: {text}");
    assert!(!text.contains("pid=1\n"), "{text}");
    assert!(text.contains(&format!("host={}", s.name)), "{text}");
    assert!(text.contains(&format!("CapEff:\t{DOCKER_DEFAULT_CAPS}")), "the container's capabilities: {text}");
    assert!(text.contains("cgroup=") && text.trim_end().ends_with(":/"), "its cgroup, seen from its namespace: {text}");
    let failed = native::exec_command(&c.dir, created.pid, &["false".into()]).unwrap().status().unwrap();
    assert_eq!(failed.code(), Some(1), "the command's exit code comes back");
    native::kill(created.pid, libc::SIGKILL).unwrap();
    assert_eq!(wait(created.pid), 128 + libc::SIGKILL);
    native::delete(&c.dir, &c.cgroups_path).unwrap();
    rootfs::remove(&c.dir).unwrap();
}

fn main() {
    if let Err(why) = native::check() {
        // A host with cgroup v2 alone: the runtime must say so, and does.
        assert!(why.contains("cgroup v2"), "{why}");
        println!("oci_berth: the berth runtime refuses this host: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layer = common::busybox_layer(tmp.path());
    type Step = fn(&Path, &Path);
    let steps: [(&str, Step); 4] = [
        ("isolated_and_limited", isolated_and_limited),
        ("another_user_has_no_capabilities", another_user_has_no_capabilities),
        (
            "a_missing_program_fails_the_create_and_leaves_nothing",
            a_missing_program_fails_the_create_and_leaves_nothing,
        ),
        ("exec_enters_the_running_container", exec_enters_the_running_container),
    ];
    for (n, (name, step)) in steps.iter().enumerate() {
        step(&layer, &tmp.path().join(format!("c{n}")));
        println!("test {name} ... ok");
    }
}
