//! Endpoint ids: the last part of each container's metadata URI. An id is a keyed digest
//! (HMAC-SHA256) of the task ARN and the container name under a secret key the agent makes once
//! and keeps in its state directory: unguessable without the key, different for every
//! container, and the same after an agent restart, so containers it adopts keep working URIs
//! (their environment cannot change).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::MetadataError;

/// The secret the ids are derived under.
pub type Key = [u8; 32];

/// Where the key is kept, in the agent's state directory.
pub const KEY_FILE: &str = "metadata.key";

/// The endpoint id of container `name` of task `task_arn`: 32 hex digits (128 bits).
pub fn endpoint_id(key: &Key, task_arn: &str, name: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    // The NUL keeps ("a", "bc") and ("ab", "c") apart: neither an ARN nor a name holds one.
    mac.update(task_arn.as_bytes());
    mac.update(&[0]);
    mac.update(name.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The key in `state_dir`, made (readable by root only) on first use.
pub fn load_or_create(state_dir: &Path) -> Result<Key, MetadataError> {
    let path = state_dir.join(KEY_FILE);
    let failed = |why: String| MetadataError::State { path: path.display().to_string(), why };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|e| failed(format!("not a hex key: {e}")))?;
            return bytes.try_into().map_err(|_| failed("the key is not 32 bytes".into()));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e.to_string())),
        Err(_) => {}
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    std::fs::create_dir_all(state_dir).map_err(|e| failed(e.to_string()))?;
    let temporary = state_dir.join(format!("{KEY_FILE}.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| failed(e.to_string()))?;
    file.write_all(hex::encode(key).as_bytes()).and_then(|()| file.sync_all()).map_err(|e| failed(e.to_string()))?;
    std::fs::rename(&temporary, &path).map_err(|e| failed(e.to_string()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/t1";

    #[test]
    fn ids_are_per_container_per_task_and_per_key() {
        let key = [7u8; 32];
        let id = endpoint_id(&key, TASK, "web");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(id, endpoint_id(&key, TASK, "web"), "stable");
        assert_ne!(id, endpoint_id(&key, TASK, "side"));
        assert_ne!(id, endpoint_id(&key, "arn:aws:ecs:us-east-1:000000000000:task/default/t2", "web"));
        assert_ne!(id, endpoint_id(&[8u8; 32], TASK, "web"), "another agent's key gives other ids");
        assert_ne!(endpoint_id(&key, "a", "bc"), endpoint_id(&key, "ab", "c"));
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), first, "read back, not made again");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), first);
        std::fs::write(dir.path().join(KEY_FILE), "zz").unwrap();
        assert!(load_or_create(dir.path()).unwrap_err().to_string().contains("not a hex key"));
    }
}
