//! EC2's `Filter.N.Name` / `Filter.N.Value.M` filters, as every Describe action reads them:
//! a resource matches when, for every filter, one of its values matches one of the filter's
//! values; values may use `*` (any run of characters) and `?` (one character), with `\`
//! escaping either. A filter name the action does not know is refused, never ignored.

use serde_json::Value;

use crate::ecs::Obj;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// The request's `Filters`, each named one of `known` (`tag:` in `known` admits every
/// `tag:KEY`).
pub fn parse(input: &Obj, known: &[&str]) -> ApiResult<Vec<Filter>> {
    let mut filters = Vec::new();
    for f in input.get("Filters").and_then(Value::as_array).into_iter().flatten() {
        let name = f.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
        let tag = name.len() > 4 && name.starts_with("tag:") && known.contains(&"tag:");
        if !tag && !known.contains(&name.as_str()) {
            return Err(ApiError::new(400, "InvalidParameterValue", format!("The filter '{name}' is invalid")));
        }
        let values: Vec<String> = f
            .get("Values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if values.is_empty() {
            return Err(ApiError::new(400, "InvalidParameterValue", format!("The filter '{name}' has no values")));
        }
        filters.push(Filter { name, values });
    }
    Ok(filters)
}

/// Whether a resource matches every filter; `field` gives the resource's values for a
/// filter name (none when it has no such value).
pub fn matches(filters: &[Filter], field: impl Fn(&str) -> Vec<String>) -> bool {
    filters.iter().all(|f| {
        let have = field(&f.name);
        f.values.iter().any(|pattern| have.iter().any(|v| glob(pattern, v)))
    })
}

enum Token {
    /// `*`: any run of characters.
    Run,
    /// `?`: one character.
    One,
    Char(char),
}

/// `*` and `?` wildcards, `\` escaping the next character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            '*' => Token::Run,
            '?' => Token::One,
            c => Token::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // reach[i]: the tokens so far can match the first i characters.
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for token in &tokens {
        let mut next = vec![false; text.len() + 1];
        for i in (0..=text.len()).filter(|i| reach[*i]) {
            match token {
                Token::Run => next[i..].iter_mut().for_each(|r| *r = true),
                Token::One if i < text.len() => next[i + 1] = true,
                Token::Char(c) if i < text.len() && text[i] == *c => next[i + 1] = true,
                _ => {}
            }
        }
        reach = next;
    }
    reach[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_and_escapes() {
        assert!(glob("us-east-1a", "us-east-1a"));
        assert!(!glob("us-east-1a", "us-east-1b"));
        assert!(glob("us-*", "us-east-1a"));
        assert!(glob("*1?", "us-east-1b"));
        assert!(!glob("*1?", "us-east-1"));
        assert!(glob("\\*a", "*a"));
        assert!(!glob("\\*a", "ba"));
        assert!(glob("a\\?", "a?"));
        assert!(!glob("a\\?", "ab"));
        assert!(glob("*", ""));
    }

    #[test]
    fn unknown_and_empty_filters_are_refused() {
        let input = |v: serde_json::Value| v.as_object().unwrap().clone();
        let e = parse(&input(json!({"Filters": [{"Name": "colour", "Values": ["x"]}]})), &["state"]).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("InvalidParameterValue", "The filter 'colour' is invalid"));
        assert!(parse(&input(json!({"Filters": [{"Name": "state"}]})), &["state"]).is_err());
        let filters =
            parse(&input(json!({"Filters": [{"Name": "state", "Values": ["avail*", "x"]}]})), &["state"]).unwrap();
        assert!(matches(&filters, |_| vec!["available".into()]));
        assert!(!matches(&filters, |_| vec!["impaired".into()]));
        assert!(!matches(&filters, |_| vec![]));
    }
}
