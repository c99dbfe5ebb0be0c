//! Where registry metadata lives in the store. Repository names may contain `/`, so the
//! per-repository keys put a `|` (never part of a name) after the name: the prefix of one
//! repository never matches another's.

pub struct Keys<'a> {
    pub region: &'a str,
}

impl Keys<'_> {
    pub fn repositories(&self) -> String {
        format!("ecr/{}/repo/", self.region)
    }

    pub fn repository(&self, name: &str) -> String {
        format!("ecr/{}/repo/{name}", self.region)
    }

    pub fn manifests(&self, repo: &str) -> String {
        format!("ecr/{}/manifest/{repo}|", self.region)
    }

    pub fn manifest(&self, repo: &str, digest: &str) -> String {
        format!("ecr/{}/manifest/{repo}|{digest}", self.region)
    }

    pub fn tags(&self, repo: &str) -> String {
        format!("ecr/{}/tag/{repo}|", self.region)
    }

    pub fn tag(&self, repo: &str, tag: &str) -> String {
        format!("ecr/{}/tag/{repo}|{tag}", self.region)
    }

    /// Blobs a repository holds (pushed to it or mounted into it).
    pub fn links(&self, repo: &str) -> String {
        format!("ecr/{}/link/{repo}|", self.region)
    }

    pub fn link(&self, repo: &str, digest: &str) -> String {
        format!("ecr/{}/link/{repo}|{digest}", self.region)
    }

    pub fn upload(&self, id: &str) -> String {
        format!("ecr/{}/upload/{id}", self.region)
    }

    pub fn preview(&self, repo: &str) -> String {
        format!("ecr/{}/preview/{repo}", self.region)
    }

    /// A registry-wide record: `policy`, `scanning`, `replication`, `setting/NAME`.
    pub fn registry(&self, what: &str) -> String {
        format!("ecr/{}/registry/{what}", self.region)
    }

    /// Pull-through cache rules, by their prefix without a trailing `/`.
    pub fn pull_through_rules(&self) -> String {
        format!("ecr/{}/ptc/", self.region)
    }

    pub fn pull_through_rule(&self, prefix: &str) -> String {
        format!("ecr/{}/ptc/{prefix}", self.region)
    }

    /// Repository creation templates, by their prefix without a trailing `/`.
    pub fn templates(&self) -> String {
        format!("ecr/{}/template/", self.region)
    }

    pub fn template(&self, prefix: &str) -> String {
        format!("ecr/{}/template/{prefix}", self.region)
    }

    /// Replication statuses of a repository's images.
    pub fn replications(&self, repo: &str) -> String {
        format!("ecr/{}/replication/{repo}|", self.region)
    }

    pub fn replication(&self, repo: &str, digest: &str) -> String {
        format!("ecr/{}/replication/{repo}|{digest}", self.region)
    }
}

/// Every region's registry keys start here.
pub const ALL: &str = "ecr/";

/// The secret registry tokens are signed with, shared by every server of the store.
pub const TOKEN_SECRET: &str = "registry/token-secret";

/// A committed blob file, known to the store (one per digest, shared by every region).
pub fn blob(digest: &str) -> String {
    format!("registry/blob/{digest}")
}

pub const BLOBS: &str = "registry/blob/";

/// Splits a per-repository key's tail `{repo}|{rest}`.
pub fn split_tail(tail: &str) -> Option<(&str, &str)> {
    tail.split_once('|')
}

/// A region that has (or had) repositories, so sweeps know where to look.
pub fn region(region: &str) -> String {
    format!("registry/region/{region}")
}

pub const REGIONS: &str = "registry/region/";
