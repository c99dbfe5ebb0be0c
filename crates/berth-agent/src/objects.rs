//! Objects a task names that ECS keeps in other AWS services, which Berth does not have yet,
//! read from directories on the agent's machine instead:
//! - Secrets Manager secrets (`repositoryCredentials`): `arn:aws:secretsmanager:...:secret:NAME`
//!   (or just `NAME`) is the file `SECRETS_DIR/NAME`, a JSON object with `username` and
//!   `password` as in Secrets Manager;
//! - S3 objects (`environmentFiles`): `arn:aws:s3:::BUCKET/KEY` is the file `S3_DIR/BUCKET/KEY`,
//!   `VARIABLE=VALUE` lines with `#` comments, as ECS reads them.

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
    under(dir, name).ok_or_else(|| format!("invalid secret name in {reference}"))
}

/// `dir/name` when `name` is a relative path of letters, digits and `/_+=.@-` with no empty,
/// `.` or `..` segment (so it cannot leave `dir`).
fn under(dir: &Path, name: &str) -> Option<PathBuf> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    let segments_ok = name.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
    (!name.is_empty() && name.chars().all(allowed) && segments_ok).then(|| dir.join(name))
}

/// The file an `environmentFiles` entry names: `arn:aws:s3:::BUCKET/KEY` under `dir`.
pub fn s3_path(dir: &Path, arn: &str) -> Result<PathBuf, String> {
    let key = arn.strip_prefix("arn:aws:s3:::").ok_or_else(|| format!("{arn} is not an S3 object ARN"))?;
    under(dir, key).ok_or_else(|| format!("invalid S3 object name in {arn}"))
}

/// The `VARIABLE=VALUE` lines of an environment file, in order; blank lines and lines starting
/// with `#` are skipped, a line without `=` is refused.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => out.push((k.trim().to_string(), v.to_string())),
            _ => return Err(format!("line {} is not VARIABLE=VALUE", n + 1)),
        }
    }
    Ok(out)
}

/// `env` (`K=V`, from the container's `environment`) over the variables of `files`, read in
/// order with later files overriding earlier ones; `environment` wins over every file.
pub fn with_env_files(dir: &Path, files: &[String], env: &[String]) -> Result<Vec<String>, String> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for arn in files {
        let path = s3_path(dir, arn)?;
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{arn}: {e} ({})", path.display()))?;
        for (k, v) in parse_env_file(&text).map_err(|e| format!("{arn}: {e}"))? {
            merged.retain(|(n, _)| *n != k);
            merged.push((k, v));
        }
    }
    let given: Vec<&str> = env.iter().filter_map(|e| e.split_once('=').map(|(k, _)| k)).collect();
    merged.retain(|(k, _)| !given.contains(&k.as_str()));
    Ok(merged.into_iter().map(|(k, v)| format!("{k}={v}")).chain(env.iter().cloned()).collect())
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
    fn env_files_parse_merge_and_lose_to_environment() {
        assert_eq!(
            parse_env_file("# c\n\nA=1\n B = x=y\nEMPTY=\n").unwrap(),
            [("A".into(), "1".into()), ("B".into(), " x=y".into()), ("EMPTY".into(), String::new())]
        );
        assert!(parse_env_file("A=1\nnope\n").unwrap_err().contains("line 2"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bucket")).unwrap();
        std::fs::write(dir.path().join("bucket/a.env"), "A=from-a\nB=from-a\n").unwrap();
        std::fs::write(dir.path().join("bucket/b.env"), "B=from-b\nC=from-b\n").unwrap();
        let files = ["arn:aws:s3:::bucket/a.env".to_string(), "arn:aws:s3:::bucket/b.env".to_string()];
        let env = with_env_files(dir.path(), &files, &["C=given".to_string()]).unwrap();
        assert_eq!(env, ["A=from-a", "B=from-b", "C=given"]);
        assert!(with_env_files(dir.path(), &["arn:aws:s3:::bucket/none.env".into()], &[]).is_err());
        assert!(s3_path(dir.path(), "arn:aws:s3:::../x.env").is_err());
        assert!(s3_path(dir.path(), "s3://bucket/x.env").is_err());
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
