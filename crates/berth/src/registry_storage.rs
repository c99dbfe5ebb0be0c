//! Where the registry keeps its blobs (`--registry-storage`): the data dir's filesystem, or an
//! S3-compatible bucket that several servers share; and opening it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use berth_registry::{BlobStore, FsBlobStore, ObjectBlobStore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStorage {
    /// `<data dir>/registry` (the default).
    Fs,
    S3(S3Settings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix inside the bucket ("" for its root).
    pub prefix: String,
    /// `None`: AWS S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Option<(String, String)>,
    pub path_style: bool,
}

/// The `--registry-s3-*` flags as given.
#[derive(Debug, Clone, Default)]
pub struct S3Flags {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub path_style: bool,
}

impl BlobStorage {
    /// Parses `fs` or `s3://BUCKET[/PREFIX]`.
    pub fn parse(storage: Option<&str>, flags: S3Flags) -> anyhow::Result<Self> {
        let raw = storage.unwrap_or("fs");
        let s3_flag_given = flags.endpoint.is_some()
            || flags.region.is_some()
            || flags.access_key.is_some()
            || flags.secret_key.is_some()
            || flags.path_style;
        if raw == "fs" {
            if s3_flag_given {
                bail!("--registry-s3-* options need --registry-storage s3://BUCKET[/PREFIX]");
            }
            return Ok(BlobStorage::Fs);
        }
        let Some(rest) = raw.strip_prefix("s3://") else {
            bail!("--registry-storage {raw}: expected `fs` or s3://BUCKET[/PREFIX]");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            bail!("--registry-storage {raw}: `{bucket}` is not a bucket name (3 to 63 of a-z, 0-9, `-`, `.`)");
        }
        if let Some(endpoint) = &flags.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            bail!("--registry-s3-endpoint {endpoint}: expected http://HOST[:PORT] or https://HOST[:PORT]");
        }
        let credentials = match (flags.access_key, flags.secret_key) {
            (Some(a), Some(s)) => Some((a, s)),
            (None, None) => None,
            _ => bail!("--registry-s3-access-key and --registry-s3-secret-key go together"),
        };
        Ok(BlobStorage::S3(S3Settings {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: flags.endpoint,
            region: flags.region.unwrap_or_else(|| "us-east-1".to_string()),
            credentials,
            path_style: flags.path_style,
        }))
    }

    /// Opens the blob storage and checks that it answers.
    pub async fn open(&self, registry_dir: &Path) -> anyhow::Result<Arc<dyn BlobStore>> {
        match self {
            BlobStorage::Fs => {
                let blobs = FsBlobStore::open(registry_dir)
                    .with_context(|| format!("opening the registry's blobs at {}", registry_dir.display()))?;
                Ok(Arc::new(blobs))
            }
            BlobStorage::S3(s3) => {
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_virtual_hosted_style_request(!s3.path_style);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some((access, secret)) = &s3.credentials {
                    builder = builder.with_access_key_id(access).with_secret_access_key(secret);
                }
                let store = builder.build().context("configuring the registry's S3 storage")?;
                let blobs = ObjectBlobStore::new(Arc::new(store), &s3.prefix);
                blobs.list_uploads().await.with_context(|| {
                    format!(
                        "reaching the registry's bucket {} at {}",
                        s3.bucket,
                        s3.endpoint.as_deref().unwrap_or("AWS S3")
                    )
                })?;
                Ok(Arc::new(blobs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_and_options_are_checked() {
        assert_eq!(BlobStorage::parse(None, S3Flags::default()).unwrap(), BlobStorage::Fs);
        let flags = S3Flags { endpoint: Some("http://127.0.0.1:9000".into()), path_style: true, ..S3Flags::default() };
        let BlobStorage::S3(s3) = BlobStorage::parse(Some("s3://berth-blobs/prod/registry/"), flags).unwrap() else {
            panic!()
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_str()),
            ("berth-blobs", "prod/registry", "us-east-1")
        );
        assert!(s3.path_style);
        for bad in ["s3://", "s3://ab", "s3://Upper", "s3://-x-bucket", "gs://bucket", "bucket"] {
            let err = BlobStorage::parse(Some(bad), S3Flags::default()).unwrap_err().to_string();
            assert!(err.contains("--registry-storage"), "{bad}: {err}");
        }
        let stray = S3Flags { path_style: true, ..S3Flags::default() };
        assert!(BlobStorage::parse(None, stray).unwrap_err().to_string().contains("need --registry-storage"));
        let half = S3Flags { access_key: Some("a".into()), ..S3Flags::default() };
        assert!(BlobStorage::parse(Some("s3://bucket"), half).unwrap_err().to_string().contains("go together"));
        let scheme = S3Flags { endpoint: Some("127.0.0.1:9000".into()), ..S3Flags::default() };
        assert!(
            BlobStorage::parse(Some("s3://bucket"), scheme).unwrap_err().to_string().contains("--registry-s3-endpoint")
        );
    }
}
