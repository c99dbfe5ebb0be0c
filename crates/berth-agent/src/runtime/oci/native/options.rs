//! Mount options as an OCI bundle writes them (`["nosuid", "ro", "mode=755"]`), turned into
//! what `mount(2)` takes: flags to set, flags a later option cleared, propagation changes
//! (applied by later calls of their own, as the kernel wants), and the file system's data.

/// One mount's options, sorted for `mount(2)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags for the mount (or the bind's remount).
    pub flags: libc::c_ulong,
    /// Propagation flags (`MS_PRIVATE`, `MS_SLAVE | MS_REC`, ...), each its own call.
    pub propagation: Vec<libc::c_ulong>,
    /// What the file system itself reads (`mode=755,size=65536k`).
    pub data: String,
}

impl MountOptions {
    /// Whether this is a bind mount (`bind` or `rbind`).
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    /// The flags a bind mount takes only through a remount (`ro`, `nosuid`, ...).
    pub fn remount_flags(&self) -> libc::c_ulong {
        self.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT)
    }
}

/// An option that sets (`true`) or clears (`false`) a flag.
fn flag(option: &str) -> Option<(bool, libc::c_ulong)> {
    Some(match option {
        "async" => (false, libc::MS_SYNCHRONOUS),
        "atime" => (false, libc::MS_NOATIME),
        "bind" => (true, libc::MS_BIND),
        "defaults" => (true, 0),
        "dev" => (false, libc::MS_NODEV),
        "diratime" => (false, libc::MS_NODIRATIME),
        "dirsync" => (true, libc::MS_DIRSYNC),
        "exec" => (false, libc::MS_NOEXEC),
        "lazytime" => (true, libc::MS_LAZYTIME),
        "mand" => (true, libc::MS_MANDLOCK),
        "noatime" => (true, libc::MS_NOATIME),
        "nodev" => (true, libc::MS_NODEV),
        "nodiratime" => (true, libc::MS_NODIRATIME),
        "noexec" => (true, libc::MS_NOEXEC),
        "nomand" => (false, libc::MS_MANDLOCK),
        "norelatime" => (false, libc::MS_RELATIME),
        "nostrictatime" => (false, libc::MS_STRICTATIME),
        "nosuid" => (true, libc::MS_NOSUID),
        "rbind" => (true, libc::MS_BIND | libc::MS_REC),
        "relatime" => (true, libc::MS_RELATIME),
        "remount" => (true, libc::MS_REMOUNT),
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "silent" => (true, libc::MS_SILENT),
        "loud" => (false, libc::MS_SILENT),
        "strictatime" => (true, libc::MS_STRICTATIME),
        "suid" => (false, libc::MS_NOSUID),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        _ => return None,
    })
}

fn propagation(option: &str) -> Option<libc::c_ulong> {
    Some(match option {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// Sorts `options` in order: a later option overrides an earlier one on the same flag.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for option in options {
        if let Some((set, bits)) = flag(option) {
            if set {
                out.flags |= bits;
            } else {
                out.flags &= !bits;
            }
        } else if let Some(p) = propagation(option) {
            out.propagation.push(p);
        } else {
            data.push(option.as_str());
        }
    }
    out.data = data.join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(options: &[&str]) -> Vec<String> {
        options.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn flags_propagation_and_data_are_sorted_apart() {
        let o = parse(&strings(&["nosuid", "strictatime", "mode=755", "size=65536k"]));
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(o.propagation.is_empty());
        let o = parse(&strings(&["rbind", "ro", "rslave"]));
        assert!(o.is_bind());
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(o.remount_flags(), libc::MS_RDONLY);
        assert_eq!(o.propagation, [libc::MS_SLAVE | libc::MS_REC]);
    }

    #[test]
    fn a_later_option_overrides_an_earlier_one() {
        assert_eq!(parse(&strings(&["ro", "rw"])).flags, 0);
        assert_eq!(parse(&strings(&["noexec", "exec", "nodev"])).flags, libc::MS_NODEV);
        assert_eq!(parse(&strings(&["rw", "ro"])).flags, libc::MS_RDONLY);
        assert!(!parse(&strings(&["newinstance", "ptmxmode=0666"])).is_bind());
        assert_eq!(parse(&strings(&["newinstance", "ptmxmode=0666"])).data, "newinstance,ptmxmode=0666");
    }
}
