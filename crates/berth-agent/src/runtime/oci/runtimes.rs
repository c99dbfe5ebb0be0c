//! The OCI runtimes the `oci` driver knows and how each is invoked: the program and the
//! global flags that go before every command (`create`, `start`, `kill`, `exec`, `delete`).
//! runc, crun and youki take Berth's bundle as it is; runsc (gVisor) is told to use the
//! ptrace platform (no KVM needed) and the network of the namespace Berth made for the task
//! (`--network=host` inside that namespace: its own netstack cannot set up there). `berth`
//! names Berth's own runtime ([`native`](super::native)), which is no program: the shim
//! runs it in itself.

use std::path::Path;
use std::process::Command;

use super::super::RuntimeError;

/// A runtime binary and its global flags.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuntimeCommand {
    pub program: String,
    pub args: Vec<String>,
}

/// The runtimes the driver knows, by the file name of their binary.
const KNOWN: [&str; 4] = ["runc", "crun", "youki", "runsc"];
/// runsc's global flags: the ptrace platform, and the host network of the task's namespace.
const RUNSC_FLAGS: [&str; 2] = ["--platform=ptrace", "--network=host"];

impl RuntimeCommand {
    /// The command for `name` (a known runtime's name or a path to one); an unknown one is
    /// refused.
    pub fn for_name(name: &str) -> Result<RuntimeCommand, RuntimeError> {
        if name == super::native::NAME {
            return Ok(RuntimeCommand { program: name.to_string(), args: Vec::new() });
        }
        let family = Path::new(name).file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !KNOWN.contains(&family) {
            return Err(RuntimeError::Unavailable(format!(
                "unknown OCI runtime {name:?}: the oci driver runs {}, or {}, its own",
                KNOWN.join(", "),
                super::native::NAME
            )));
        }
        let args = if family == "runsc" { RUNSC_FLAGS.iter().map(|f| f.to_string()).collect() } else { Vec::new() };
        Ok(RuntimeCommand { program: name.to_string(), args })
    }

    /// Like [`for_name`](Self::for_name), and the binary must answer `--version`.
    pub fn checked(name: &str) -> Result<RuntimeCommand, RuntimeError> {
        let command = Self::for_name(name)?;
        if command.is_builtin() {
            super::native::check().map_err(RuntimeError::Unavailable)?;
            return Ok(command);
        }
        let found = Command::new(&command.program).arg("--version").output();
        if !found.map(|o| o.status.success()).unwrap_or(false) {
            return Err(RuntimeError::Unavailable(format!("the OCI runtime {name:?} cannot be run")));
        }
        Ok(command)
    }

    /// Whether this is runc, whose exec fifo and state directory the driver uses directly.
    pub fn is_runc(&self) -> bool {
        Path::new(&self.program).file_name().and_then(|n| n.to_str()) == Some("runc")
    }

    /// Whether this is Berth's own runtime, which the shim runs in itself.
    pub fn is_builtin(&self) -> bool {
        self.program == super::native::NAME
    }

    /// A process running the runtime with its global flags, ready for a command's arguments.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command
    }

    /// The same, for async callers.
    pub fn tokio_command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args);
        command
    }

    /// The `berth shim` arguments naming this runtime (`--runtime`, `--runtime-arg`s).
    pub fn shim_args(&self) -> Vec<String> {
        let mut out = vec!["--runtime".to_string(), self.program.clone()];
        for arg in &self.args {
            out.push(format!("--runtime-arg={arg}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runsc_gets_its_flags_and_unknown_runtimes_are_refused() {
        assert_eq!(RuntimeCommand::for_name("runc").unwrap().args, Vec::<String>::new());
        let runsc = RuntimeCommand::for_name("/usr/bin/runsc").unwrap();
        assert_eq!(runsc.args, ["--platform=ptrace", "--network=host"]);
        assert!(!runsc.is_runc());
        assert_eq!(
            runsc.shim_args(),
            ["--runtime", "/usr/bin/runsc", "--runtime-arg=--platform=ptrace", "--runtime-arg=--network=host"]
        );
        let err = RuntimeCommand::for_name("kata").unwrap_err().to_string();
        assert!(err.contains("unknown OCI runtime \"kata\""), "{err}");
        assert!(err.contains("or berth, its own"), "{err}");
        let own = RuntimeCommand::for_name("berth").unwrap();
        assert!(own.is_builtin() && !own.is_runc() && !runsc.is_builtin());
    }
}
