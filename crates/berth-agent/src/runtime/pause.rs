//! The pause program: the first process of a task's shared PID and IPC namespaces
//! (`pidMode`/`ipcMode` `task`), as the ECS agent's pause container is. A PID namespace lives
//! only while its first process does, and that process reaps the orphans of every container
//! in it; so it must run for the whole task, do nothing, and leave no zombies.
//!
//! It is a static ELF executable of a few dozen instructions, built here from its machine
//! code so that no image has to be pulled or shipped: it sets SIGCHLD to be ignored (the
//! kernel then reaps its children at once) and waits for signals forever. As the first
//! process of a namespace it ignores every signal it has no handler for, so only SIGKILL from
//! outside (the driver removing it) ends it.

/// The program for this machine's architecture, or `None` where Berth has no code for it.
pub fn program() -> Option<Vec<u8>> {
    let (machine, code): (u16, &[u8]) = match std::env::consts::ARCH {
        "x86_64" => (EM_X86_64, &X86_64),
        "aarch64" => (EM_AARCH64, &AARCH64),
        _ => return None,
    };
    Some(elf(machine, code))
}

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// x86-64 (assembled with `llvm-mc --triple=x86_64 -x86-asm-syntax=intel`):
/// ```text
///     push 0; push 0; push 0; push 1      ; struct sigaction {SIG_IGN, flags 0, restorer 0, mask 0}
///     mov eax, 13                         ; rt_sigaction
///     mov edi, 17                         ;   SIGCHLD
///     mov rsi, rsp                        ;   the struct
///     xor edx, edx                        ;   no old action
///     mov r10d, 8                         ;   sizeof(sigset_t)
///     syscall
/// 1:  mov eax, 34                         ; pause
///     syscall
///     jmp 1b
/// ```
const X86_64: [u8; 40] = [
    0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x01, // pushes
    0xb8, 0x0d, 0x00, 0x00, 0x00, // mov eax, 13
    0xbf, 0x11, 0x00, 0x00, 0x00, // mov edi, 17
    0x48, 0x89, 0xe6, // mov rsi, rsp
    0x31, 0xd2, // xor edx, edx
    0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // mov r10d, 8
    0x0f, 0x05, // syscall
    0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34
    0x0f, 0x05, // syscall
    0xeb, 0xf7, // jmp -9
];

/// AArch64 (assembled with `llvm-mc --triple=aarch64`), which has no pause system call:
/// ppoll on no descriptors without a timeout waits the same way.
/// ```text
///     mov x9, #1
///     stp x9, xzr, [sp, #-32]!            // struct sigaction {SIG_IGN, flags 0,
///     stp xzr, xzr, [sp, #16]             //   restorer 0, mask 0}
///     mov x0, #17                         // SIGCHLD
///     mov x1, sp
///     mov x2, #0
///     mov x3, #8
///     mov x8, #134                        // rt_sigaction
///     svc #0
/// 1:  mov x0, #0 ... mov x4, #0           // ppoll(NULL, 0, NULL, NULL, 0)
///     mov x8, #73
///     svc #0
///     b 1b
/// ```
const AARCH64: [u8; 68] = [
    0x29, 0x00, 0x80, 0xd2, 0xe9, 0x7f, 0xbe, 0xa9, 0xff, 0x7f, 0x01, 0xa9, 0x20, 0x02, 0x80,
    0xd2, // mov, stp, stp, mov
    0xe1, 0x03, 0x00, 0x91, 0x02, 0x00, 0x80, 0xd2, 0x03, 0x01, 0x80, 0xd2, 0xc8, 0x10, 0x80,
    0xd2, // mov x1..x3, x8
    0x01, 0x00, 0x00, 0xd4, // svc
    0x00, 0x00, 0x80, 0xd2, 0x01, 0x00, 0x80, 0xd2, 0x02, 0x00, 0x80, 0xd2, 0x03, 0x00, 0x80, 0xd2, // mov x0..x3
    0x04, 0x00, 0x80, 0xd2, 0x28, 0x09, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, // mov x4, mov x8, svc
    0xf9, 0xff, 0xff, 0x17, // b -7 instructions
];

/// Where the file is mapped.
const BASE: u64 = 0x40_0000;
const ELF_HEADER: u64 = 64;
const PROGRAM_HEADER: u64 = 56;

/// A static ELF64 little-endian executable: the header, one loadable segment (the whole file,
/// readable and executable) and `code`, which starts running at its first byte.
fn elf(machine: u16, code: &[u8]) -> Vec<u8> {
    let start = ELF_HEADER + PROGRAM_HEADER;
    let size = start + code.len() as u64;
    let mut out = Vec::with_capacity(size as usize);
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // 64-bit, LE, v1
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    out.extend_from_slice(&(BASE + start).to_le_bytes()); // entry
    out.extend_from_slice(&ELF_HEADER.to_le_bytes()); // program headers' offset
    out.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&(ELF_HEADER as u16).to_le_bytes());
    out.extend_from_slice(&(PROGRAM_HEADER as u16).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // one program header
    out.extend_from_slice(&[0; 6]); // section header size, count, names index
    out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    out.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    out.extend_from_slice(&0u64.to_le_bytes()); // from the file's start
    out.extend_from_slice(&BASE.to_le_bytes()); // virtual address
    out.extend_from_slice(&BASE.to_le_bytes()); // physical address
    out.extend_from_slice(&size.to_le_bytes()); // in the file
    out.extend_from_slice(&size.to_le_bytes()); // in memory
    out.extend_from_slice(&0x1000u64.to_le_bytes()); // alignment
    out.extend_from_slice(code);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_has_one_segment_covering_the_code() {
        let bytes = elf(EM_X86_64, &X86_64);
        assert_eq!(&bytes[..4], b"\x7fELF");
        assert_eq!(bytes.len(), 120 + X86_64.len());
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().unwrap()), BASE + 120, "entry");
        assert_eq!(u64::from_le_bytes(bytes[64 + 32..64 + 40].try_into().unwrap()), bytes.len() as u64);
        assert_eq!(u16::from_le_bytes(bytes[18..20].try_into().unwrap()), EM_X86_64);
    }

    /// Runs the program of this machine: it sets SIGCHLD to ignored and keeps waiting until
    /// SIGKILL.
    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn the_program_waits_with_sigchld_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, program().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&path).spawn().unwrap();
        let status = format!("/proc/{}/status", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let ignored = loop {
            let text = std::fs::read_to_string(&status).unwrap();
            let mask = text.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap().trim().to_string();
            let mask = u64::from_str_radix(&mask, 16).unwrap();
            if mask & (1 << (libc::SIGCHLD - 1)) != 0 || std::time::Instant::now() > deadline {
                break mask;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_ne!(ignored & (1 << (libc::SIGCHLD - 1)), 0, "SIGCHLD ignored");
        assert!(child.try_wait().unwrap().is_none(), "still waiting");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
