use super::*;

fn m(pattern: &str, message: &str) -> bool {
    Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}")).matches(message)
}

#[test]
fn empty_matches_everything() {
    assert!(m("", "anything"));
    assert!(m("   ", ""));
}

#[test]
fn terms_all_must_occur_case_sensitively() {
    assert!(m("ERROR", "[ERROR] disk"));
    assert!(!m("ERROR", "error disk"));
    assert!(m("ERROR disk", "disk ERROR"));
    assert!(!m("ERROR disk", "ERROR net"));
}

#[test]
fn quoted_phrases_keep_their_spaces_and_punctuation() {
    assert!(m("\"disk full\"", "the disk full again"));
    assert!(!m("\"disk full\"", "full disk"));
    assert!(m("\"a \\\"b\\\"\"", "x a \"b\" y"));
    assert!(m("\"user:root\" ERROR", "ERROR user:root"));
}

#[test]
fn exclusions_and_alternatives() {
    assert!(m("ERROR -retry", "ERROR fatal"));
    assert!(!m("ERROR -retry", "ERROR will retry"));
    assert!(m("?ERROR ?WARN", "WARN low disk"));
    assert!(m("?ERROR ?WARN", "ERROR"));
    assert!(!m("?ERROR ?WARN", "INFO ok"));
    assert!(!m("?ERROR ?WARN -disk", "WARN low disk"));
    assert!(m("-\"no such\"", "fine"));
}

#[test]
fn regular_expressions() {
    assert!(m("%time.?out%", "request timeout"));
    assert!(m("%time.?out%", "time-out"));
    assert!(!m("%^time%", "a timeout"));
    assert!(m("ERROR %[0-9]{3}%", "ERROR 503"));
}

#[test]
fn json_comparisons() {
    let line =
        r#"{"level":"error","latency":250,"user":{"name":"ann","roles":["admin","dev"]},"ok":false,"gone":null}"#;
    assert!(m(r#"{ $.level = "error" }"#, line));
    assert!(m("{ $.level = error }", line));
    assert!(!m(r#"{ $.level = "info" }"#, line));
    assert!(m(r#"{ $.level != "info" }"#, line));
    assert!(m("{ $.latency > 100 }", line));
    assert!(!m("{ $.latency < 100 }", line));
    assert!(m("{ $.latency >= 250 && $.latency <= 250 }", line));
    assert!(m("{ $.latency = 250 }", line));
    assert!(m(r#"{ $.user.name = "a*" }"#, line));
    assert!(m(r#"{ $.user.roles[1] = "dev" }"#, line));
    assert!(!m(r#"{ $.user.roles[2] = "dev" }"#, line));
    assert!(m("{ $.ok IS FALSE }", line));
    assert!(!m("{ $.ok IS TRUE }", line));
    assert!(m("{ $.gone IS NULL }", line));
    assert!(m("{ $.missing NOT EXISTS }", line));
    assert!(!m("{ $.level NOT EXISTS }", line));
    assert!(m(r#"{ $.level = %^err% }"#, line));
}

#[test]
fn json_logic_and_precedence() {
    let line = r#"{"level":"warn","latency":50,"retry":true}"#;
    assert!(m(r#"{ $.level = "error" || $.latency > 10 && $.retry IS TRUE }"#, line));
    assert!(!m(r#"{ ($.level = "error" || $.latency > 10) && $.retry IS FALSE }"#, line));
    assert!(!m(r#"{ $.level = "error" && $.latency > 10 || $.missing = 1 }"#, line));
}

#[test]
fn json_patterns_never_match_other_messages() {
    assert!(!m(r#"{ $.level = "error" }"#, "level=error"));
    assert!(!m("{ $.missing NOT EXISTS }", "[1,2]"));
    assert!(!m("{ $.latency > 1 }", r#"{"latency":"slow"}"#));
    assert!(m("{ $.latency != 1 }", r#"{"latency":"slow"}"#));
}

const ACCESS: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534"#;

#[test]
fn delimited_fields_bind_in_order() {
    assert!(m("[ip, id, user, timestamp, request, status, bytes]", ACCESS));
    assert!(!m("[ip, id, user, timestamp, request, status]", ACCESS));
    assert!(m("[ip, id, user = frank, timestamp, request, status = 404, bytes > 1000]", ACCESS));
    assert!(!m("[ip, id, user = frank, timestamp, request, status = 200, bytes]", ACCESS));
    assert!(m("[ip, id, user, timestamp, request = \"GET *\", status = 4*, bytes]", ACCESS));
    assert!(m("[ip = 127.0.0.*, ...]", ACCESS));
    assert!(m("[..., status = 404, bytes]", ACCESS));
    assert!(m("[ip, ..., bytes < 2000]", ACCESS));
    assert!(!m("[..., status = 500, bytes]", ACCESS));
}

#[test]
fn delimited_alternatives() {
    assert!(m("[..., status = 500 || status = 404, bytes]", ACCESS));
    assert!(!m("[..., status = 500 || status = 503, bytes]", ACCESS));
    assert!(m("[..., status = 404 && bytes > 1000, bytes]", ACCESS));
}

#[test]
fn delimited_splitting() {
    assert_eq!(
        delimited::split(ACCESS),
        vec!["127.0.0.1", "-", "frank", "10/Oct/2000:13:25:15 -0700", "GET /apache_pb.gif HTTP/1.0", "404", "1534"]
    );
    assert_eq!(delimited::split("  a  \"b c\" [d] e "), vec!["a", "b c", "d", "e"]);
    assert_eq!(delimited::split("\"unclosed quote"), vec!["\"unclosed", "quote"]);
}

#[test]
fn bad_patterns_say_what_and_where() {
    for (pattern, position, fragment) in [
        ("\"open", 0, "unterminated quoted string"),
        ("ERROR %[a-%", 6, "invalid regular expression"),
        ("{ $.a = 1", 9, "expected '}'"),
        ("{ a = 1 }", 2, "selector"),
        ("{ $.a > \"x\" }", 8, "only = and != compare with text"),
        ("{ $.a IS MAYBE }", 6, "NULL, TRUE or FALSE"),
        ("{ $..a = 1 }", 2, "empty member name"),
        ("{ $.a = 1 } x", 12, "end of the pattern"),
        ("[a, a]", 4, "used twice"),
        ("[a = 1 || b = 2]", 0, "'b', which is not a field"),
        ("[a b]", 3, "expected ','"),
        ("ERROR -", 6, "needs a term"),
        ("ERR\"OR", 3, "quote inside a term"),
    ] {
        let e = Pattern::parse(pattern).expect_err(pattern);
        assert_eq!(e.position, position, "{pattern}: {e}");
        assert!(e.to_string().contains(fragment), "{pattern}: {e}");
    }
}

#[test]
fn globs() {
    assert!(glob("abc", "abc"));
    assert!(!glob("abc", "abcd"));
    assert!(glob("a*", "abcd"));
    assert!(glob("*d", "abcd"));
    assert!(glob("a*c*e", "abcde"));
    assert!(!glob("a*c*e", "abcdf"));
    assert!(glob("*", ""));
    assert!(!glob("ab*ba", "aba"));
}

proptest::proptest! {
    /// A plain term matches exactly the messages containing it; its exclusion the others.
    #[test]
    fn a_term_is_a_substring_test(term in "[a-zA-Z0-9_.:/]{1,6}", message in "[a-zA-Z0-9_.:/ ]{0,40}") {
        let contains = message.contains(&term);
        proptest::prop_assert_eq!(m(&term, &message), contains);
        proptest::prop_assert_eq!(m(&format!("-{term}"), &message), !contains);
        proptest::prop_assert_eq!(m(&format!("\"{term}\""), &message), contains);
    }

    /// A glob without stars is equality; with a star in place of any part, it matches.
    #[test]
    fn globs_agree_with_their_definition(text in "[ab]{0,8}", cut in 0usize..9, len in 0usize..9) {
        proptest::prop_assert!(glob(&text, &text));
        let start = cut.min(text.len());
        let end = (start + len).min(text.len());
        let pattern = format!("{}*{}", &text[..start], &text[end..]);
        proptest::prop_assert!(glob(&pattern, &text));
    }
}
