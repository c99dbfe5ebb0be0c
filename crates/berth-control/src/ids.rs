//! Where new identifiers come from: random ones in production, a counter in tests, so a
//! test can name the task or deployment a step will create.

use std::sync::atomic::{AtomicU64, Ordering};

pub trait Ids: Send + Sync + 'static {
    /// A task id: 32 lowercase hex digits, as ECS writes them.
    fn task_id(&self) -> String;
    /// A deployment or task set id: `ecs-svc/` and 19 digits.
    fn deployment_id(&self) -> String;
    /// A seed for the placement engine's random choices.
    fn seed(&self) -> u64;
    /// A UUID (container ids, event ids).
    fn uuid(&self) -> String;
    /// An EC2 resource id: `prefix`, a dash and 17 lowercase hex digits, as EC2 writes them
    /// (`vpc-`, `subnet-`, `sg-`, `eni-`, `sgr-`, ...).
    fn ec2_id(&self, prefix: &str) -> String {
        let hex = self.uuid().replace('-', "");
        format!("{prefix}-{}", &hex[hex.len() - 17..])
    }
}

/// Fresh random identifiers.
pub struct RandomIds;

fn random_u64() -> u64 {
    u64::from_le_bytes(uuid::Uuid::new_v4().into_bytes()[..8].try_into().expect("8 bytes"))
}

impl Ids for RandomIds {
    fn task_id(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    fn deployment_id(&self) -> String {
        format!("ecs-svc/{}", 1_000_000_000_000_000_000 + random_u64() % 9_000_000_000_000_000_000)
    }

    fn seed(&self) -> u64 {
        random_u64()
    }

    fn uuid(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn ec2_id(&self, prefix: &str) -> String {
        // 68 random bits: 17 hex digits.
        let bits = u128::from_le_bytes(uuid::Uuid::new_v4().into_bytes()) & ((1u128 << 68) - 1);
        format!("{prefix}-{bits:017x}")
    }
}

/// Identifiers from a counter: `...0001`, `...0002`, ...
#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl Ids for SequentialIds {
    fn task_id(&self) -> String {
        format!("{:032x}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn deployment_id(&self) -> String {
        format!("ecs-svc/{}", 1_000_000_000_000_000_000 + self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn seed(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn uuid(&self) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    fn ec2_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:017x}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_ids_have_17_hex_digits() {
        for id in [RandomIds.ec2_id("subnet"), SequentialIds::default().ec2_id("subnet")] {
            let digits = id.strip_prefix("subnet-").unwrap();
            assert_eq!(digits.len(), 17, "{id}");
            assert!(digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
        }
        assert_ne!(RandomIds.ec2_id("sg"), RandomIds.ec2_id("sg"));
    }
}
