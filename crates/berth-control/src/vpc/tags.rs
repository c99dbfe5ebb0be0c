//! Tags on VPC resources (VPCs, subnets, security groups and their rules, network
//! interfaces): EC2's rules for them, and setting and removing them on a record's list.

use serde::{Deserialize, Serialize};

use super::VpcError;

/// Tags one resource may carry.
pub const MAX_TAGS: usize = 50;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: &str, value: &str) -> Self {
        Tag { key: key.to_string(), value: value.to_string() }
    }
}

/// What DeleteTags names: a key, and optionally the value it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMatch {
    pub key: String,
    pub value: Option<String>,
}

/// EC2's rules for tags a request sets.
pub fn check(tags: &[Tag]) -> Result<(), VpcError> {
    for tag in tags {
        if tag.key.is_empty() {
            return Err(VpcError::invalid("Tag key cannot be empty"));
        }
        if tag.key.chars().count() > MAX_KEY {
            return Err(VpcError::invalid(format!("Tag key exceeds the maximum length of {MAX_KEY} characters")));
        }
        if tag.value.chars().count() > MAX_VALUE {
            return Err(VpcError::invalid(format!("Tag value exceeds the maximum length of {MAX_VALUE} characters")));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(VpcError::invalid("Tag keys starting with 'aws:' are reserved for internal use"));
        }
    }
    Ok(())
}

/// Sets `new` on `tags` (a key already there takes the new value).
pub fn set(tags: &mut Vec<Tag>, new: &[Tag]) -> Result<(), VpcError> {
    check(new)?;
    for tag in new {
        match tags.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value = tag.value.clone(),
            None => tags.push(tag.clone()),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(VpcError::TagLimit);
    }
    Ok(())
}

/// Removes the tags `which` names (every tag when `which` is empty); a match with a value
/// removes the tag only when it has that value. Whether anything was removed.
pub fn remove(tags: &mut Vec<Tag>, which: &[TagMatch]) -> bool {
    let before = tags.len();
    if which.is_empty() {
        tags.clear();
    } else {
        tags.retain(|t| !which.iter().any(|m| m.key == t.key && m.value.as_ref().is_none_or(|v| *v == t.value)));
    }
    tags.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overwrites_and_counts() {
        let mut tags = vec![Tag::new("Name", "a")];
        set(&mut tags, &[Tag::new("Name", "b"), Tag::new("team", "")]).unwrap();
        assert_eq!(tags, [Tag::new("Name", "b"), Tag::new("team", "")]);
        let many: Vec<Tag> = (0..49).map(|i| Tag::new(&format!("k{i}"), "v")).collect();
        assert_eq!(set(&mut tags, &many), Err(VpcError::TagLimit));
        assert!(set(&mut Vec::new(), &[Tag::new("aws:x", "v")]).is_err());
        assert!(set(&mut Vec::new(), &[Tag::new("", "v")]).is_err());
        assert!(set(&mut Vec::new(), &[Tag::new(&"k".repeat(129), "v")]).is_err());
    }

    #[test]
    fn remove_by_key_or_key_and_value() {
        let mut tags = vec![Tag::new("a", "1"), Tag::new("b", "2"), Tag::new("c", "")];
        assert!(!remove(&mut tags, &[TagMatch { key: "a".into(), value: Some("9".into()) }]));
        assert!(remove(&mut tags, &[TagMatch { key: "a".into(), value: Some("1".into()) }]));
        assert!(remove(&mut tags, &[TagMatch { key: "c".into(), value: None }]));
        assert_eq!(tags, [Tag::new("b", "2")]);
        assert!(remove(&mut tags, &[]));
        assert!(tags.is_empty());
    }
}
