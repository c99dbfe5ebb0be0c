//! Secrets a task names, read on the agent's machine. ECS keeps them in Secrets Manager;
//! Berth has no secret store yet, so the agent reads a secret named
//! `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME` (or just `NAME`) from the file
//! `SECRETS_DIR/NAME`. Today that serves `repositoryCredentials`: a JSON object with
//! `username` and `password`, as in Secrets Manager.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file a secret reference points at, if the reference is well formed: a name of
/// letters, digits and `/_+=.@-`, with no empty, `.` or `..` segment.
pub fn secret_path(dir: &Path, reference: &str) -> Result<PathBuf, String> {
    let name = match reference.strip_prefix("arn:") {
        Some(_) => match reference.split_once(":secret:") {
            Some((head, name)) if head.starts_with("arn:aws:secretsmanager:") => name,
            _ => return Err(format!("{reference} is not a Secrets Manager secret ARN")),
        },
        None => reference,
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    let segments_ok = name.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
    if name.is_empty() || !name.chars().all(allowed) || !segments_ok {
        return Err(format!("invalid secret name in {reference}"));
    }
    Ok(dir.join(name))
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// The basic-auth pair of a `repositoryCredentials.credentialsParameter`.
pub fn registry_credentials(dir: &Path, reference: &str) -> Result<(String, String), String> {
    let path = secret_path(dir, reference)?;
    let raw = std::fs::read(&path).map_err(|e| format!("secret {reference}: {e} ({})", path.display()))?;
    let c: Credentials = serde_json::from_slice(&raw)
        .map_err(|e| format!("secret {reference}: not a JSON object with username and password: {e}"))?;
    Ok((c.username, c.password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_files_under_the_directory() {
        let dir = Path::new("/s");
        assert_eq!(secret_path(dir, "regcreds").unwrap(), Path::new("/s/regcreds"));
        assert_eq!(
            secret_path(dir, "arn:aws:secretsmanager:us-east-1:000000000000:secret:team/reg-AbCdEf").unwrap(),
            Path::new("/s/team/reg-AbCdEf")
        );
        for bad in ["", "../etc/passwd", "a/../b", "/abs", "a//b", "a b", "arn:aws:s3:::bucket/x", "x/."] {
            assert!(secret_path(dir, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn credentials_are_read_and_bad_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good"), br#"{"username":"u","password":"p"}"#).unwrap();
        std::fs::write(dir.path().join("bad"), b"u:p").unwrap();
        assert_eq!(registry_credentials(dir.path(), "good").unwrap(), ("u".into(), "p".into()));
        assert!(registry_credentials(dir.path(), "bad").unwrap_err().contains("not a JSON object"));
        assert!(registry_credentials(dir.path(), "missing").unwrap_err().contains("secret missing"));
    }
}
