//! Registry auth tokens, as ECR's GetAuthorizationToken hands them out: a password valid for
//! 12 hours that docker and skopeo send as basic auth with the user name `AWS`.
//!
//! A password is `<claims>.<mac>`, both base64url: the claims name the access key that asked
//! and the region it signed for (the registry the token opens) and when it expires; the mac
//! is HMAC-SHA256 over the claims with a secret kept in the data dir, so a token survives a
//! restart and cannot be forged or extended.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a token is valid, as ECR's are.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The user name that goes with a token.
pub const USER: &str = "AWS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub access_key: String,
    pub region: String,
    pub expires: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the authorization token is malformed")]
    Malformed,
    #[error("the authorization token is not valid")]
    BadSignature,
    #[error("the authorization token has expired")]
    Expired,
}

pub struct Tokens {
    secret: Vec<u8>,
}

impl Tokens {
    pub fn new(secret: Vec<u8>) -> Self {
        Tokens { secret }
    }

    /// Reads the token secret from `path`, creating it (readable by its owner only) if absent.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(raw) = std::fs::read_to_string(path)
            && let Ok(secret) = hex::decode(raw.trim())
            && secret.len() >= 32
        {
            return Ok(Tokens::new(secret));
        }
        let mut secret = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(hex::encode(&secret).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(Tokens::new(secret))
    }

    /// The secret of every server sharing `store`: the one in the store or, the first time,
    /// this data dir's (`path`, created if absent, so tokens handed out before stay valid),
    /// written to the store by whichever server gets there first.
    pub async fn shared(store: &dyn berth_store::Store, path: &Path) -> crate::error::Result<Self> {
        use berth_store::{Compare, Op, OpResponse, Txn};
        let key = crate::keys::TOKEN_SECRET;
        let decode = |raw: &[u8]| hex::decode(raw).ok().filter(|s| s.len() >= 32).map(Tokens::new);
        if let Some(found) = store.get(key)?.and_then(|kv| decode(&kv.value)) {
            return Ok(found);
        }
        let local = Self::load_or_create(path)?;
        let txn = Txn::new()
            .when(vec![Compare::absent(key)])
            .and_then(vec![Op::put(key, hex::encode(&local.secret).into_bytes())])
            .or_else(vec![Op::get(key)]);
        let response = store.txn(txn).await?;
        if response.succeeded {
            return Ok(local);
        }
        match response.responses.first() {
            Some(OpResponse::Get { kvs }) => kvs
                .first()
                .and_then(|kv| decode(&kv.value))
                .ok_or_else(|| berth_store::StoreError::Corrupt(format!("{key} holds no usable secret")).into()),
            _ => Err(berth_store::StoreError::Corrupt(format!("{key}: no answer to its read")).into()),
        }
    }

    fn mac(&self, claims: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("hmac takes any key length");
        mac.update(claims.as_bytes());
        mac
    }

    /// A password for `access_key` in `region`, valid until `now + TOKEN_LIFETIME`.
    pub fn issue(&self, access_key: &str, region: &str, now: SystemTime) -> (String, SystemTime) {
        let expires = now + TOKEN_LIFETIME;
        let secs = expires.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let claims = URL_SAFE_NO_PAD.encode(format!("{access_key}\n{region}\n{secs}"));
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&claims).finalize().into_bytes());
        (format!("{claims}.{tag}"), expires)
    }

    /// What ECR returns as `authorizationToken`: base64 of `AWS:<password>`.
    pub fn authorization_token(password: &str) -> String {
        STANDARD.encode(format!("{USER}:{password}"))
    }

    pub fn verify(&self, password: &str, now: SystemTime) -> Result<Claims, TokenError> {
        let (claims, tag) = password.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        self.mac(claims).verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
        let raw = URL_SAFE_NO_PAD.decode(claims).map_err(|_| TokenError::Malformed)?;
        let raw = String::from_utf8(raw).map_err(|_| TokenError::Malformed)?;
        let mut parts = raw.split('\n');
        let (Some(access_key), Some(region), Some(secs), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let expires = UNIX_EPOCH + Duration::from_secs(secs.parse().map_err(|_| TokenError::Malformed)?);
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(Claims { access_key: access_key.to_string(), region: region.to_string(), expires })
    }

    /// Reads a basic `Authorization` header value (`Basic base64(user:password)`).
    pub fn basic_password(header: &str) -> Option<String> {
        let encoded = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        (user == USER).then(|| password.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_until_it_expires() {
        let tokens = Tokens::new(vec![7; 32]);
        let now = SystemTime::now();
        let (password, expires) = tokens.issue("AKIDEXAMPLE", "eu-west-1", now);
        let claims = tokens.verify(&password, now).unwrap();
        assert_eq!((claims.access_key.as_str(), claims.region.as_str()), ("AKIDEXAMPLE", "eu-west-1"));
        assert_eq!(tokens.verify(&password, expires), Err(TokenError::Expired));
        let header = format!("Basic {}", Tokens::authorization_token(&password));
        assert_eq!(Tokens::basic_password(&header).as_deref(), Some(password.as_str()));
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let tokens = Tokens::new(vec![7; 32]);
        let now = SystemTime::now();
        let (password, _) = tokens.issue("AKID", "us-east-1", now);
        assert_eq!(Tokens::new(vec![8; 32]).verify(&password, now), Err(TokenError::BadSignature));
        let (claims, tag) = password.split_once('.').unwrap();
        let longer = URL_SAFE_NO_PAD.encode("AKID\nus-east-1\n99999999999");
        assert_eq!(tokens.verify(&format!("{longer}.{tag}"), now), Err(TokenError::BadSignature));
        assert_eq!(tokens.verify(claims, now), Err(TokenError::Malformed));
        assert_eq!(Tokens::basic_password(&format!("Basic {}", STANDARD.encode("bob:x"))), None);
    }

    #[test]
    fn the_secret_is_kept_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.key");
        let (password, _) = Tokens::load_or_create(&path).unwrap().issue("A", "r", SystemTime::now());
        assert!(Tokens::load_or_create(&path).unwrap().verify(&password, SystemTime::now()).is_ok());
    }
}
