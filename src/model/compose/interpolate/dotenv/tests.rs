use super::*;

fn parse(text: &str) -> Parsed {
    match DotEnv::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{text:?} failed at {}:{}: {}", e.line, e.col, e.message),
    }
}

fn error(text: &str) -> DotEnvError {
    match DotEnv::parse(text) {
        Ok(parsed) => panic!("{text:?} parsed as {:?}", parsed.env.entries()),
        Err(e) => e,
    }
}

#[test]
fn single_statements() {
    // (input, key, value)
    let cases: &[(&str, &str, &str)] = &[
        // unquoted
        ("FOO=bar", "FOO", "bar"),
        ("FOO =bar", "FOO", "bar"),
        ("FOO= bar", "FOO", "bar"),
        ("FOO=bar ", "FOO", "bar"),
        ("FOO=", "FOO", ""),
        ("FOO=foobar=", "FOO", "foobar="),
        ("FOO.BAR=foobar", "FOO.BAR", "foobar"),
        ("FOO-BAR=x", "FOO-BAR", "x"),
        ("OPTION_A=1:B", "OPTION_A", "1:B"),
        ("FOO=a\\tb", "FOO", "a\\tb"),
        ("FOO=it's \"x\"", "FOO", "it's \"x\""),
        ("FOO=bar\r\n", "FOO", "bar"),
        (" KEY =value", "KEY", "value"),
        ("\tKEY=value", "KEY", "value"),
        ("ÜBER=straße", "ÜBER", "straße"),
        // yaml style
        ("OPTION_A: 1", "OPTION_A", "1"),
        ("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar"),
        // export
        ("export OPTION_A=2", "OPTION_A", "2"),
        ("export\tOPTION_A=2", "OPTION_A", "2"),
        ("  export OPTION_A=2", "OPTION_A", "2"),
        ("export exportFoo=2", "exportFoo", "2"),
        ("exportFOO=2", "exportFOO", "2"),
        ("export_FOO =2", "export_FOO", "2"),
        ("export.FOO= 2", "export.FOO", "2"),
        ("export=1", "export", "1"),
        ("export OPTION_A=\"export A\"", "OPTION_A", "export A"),
        // comments
        ("FOO=bar # this is foo", "FOO", "bar"),
        ("FOO=bar #this is foo", "FOO", "bar"),
        ("FOO=bar #", "FOO", "bar"),
        (
            "FOO=123#not-an-inline-comment",
            "FOO",
            "123#not-an-inline-comment",
        ),
        // as in compose-go, a value cannot start with a comment
        (
            "FOO= # looks like a comment",
            "FOO",
            "# looks like a comment",
        ),
        ("FOO=\"bar#baz\"", "FOO", "bar#baz"),
        ("FOO=\"bar#baz\"#", "FOO", "bar#baz"),
        ("FOO=\"bar#baz\" # comment", "FOO", "bar#baz"),
        ("FOO='bar#baz' # comment", "FOO", "bar#baz"),
        ("FOO=\"bar#baz#bang\" # comment", "FOO", "bar#baz#bang"),
        // single quotes are literal
        ("FOO='bar'", "FOO", "bar"),
        ("FOO=''", "FOO", ""),
        ("export OPTION_B='\\n'", "OPTION_B", "\\n"),
        ("FOO='quote $BAR'", "FOO", "quote $BAR"),
        ("FOO='it\\'s'", "FOO", "it's"),
        ("FOO='a\\\\'", "FOO", "a\\\\"),
        ("FOO='line1\nline2'", "FOO", "line1\nline2"),
        // double quotes
        ("FOO=\"bar\"", "FOO", "bar"),
        ("FOO=\"\"", "FOO", ""),
        ("THREE = \"3\"", "THREE", "3"),
        ("FOO=\"escaped\\\"bar\"", "FOO", "escaped\"bar"),
        ("FOO=\"\\\"quoted\\\"\"", "FOO", "\"quoted\""),
        ("FOO=\"'d'\"", "FOO", "'d'"),
        ("FOO=\"bar\\nbaz\"", "FOO", "bar\nbaz"),
        ("FOO=\"a\\tb\"", "FOO", "a\tb"),
        (
            "KEY=\"Z\\aZ\\bZ\\fZ\\nZ\\rZ\\tZ\\vZ\\\\Z\\0123Z\"",
            "KEY",
            "Z\x07Z\x08Z\x0cZ\nZ\rZ\tZ\x0bZ\\ZSZ",
        ),
        ("FOO=\"bar\\n\\ b\\az\"", "FOO", "bar\n\\ b\x07z"),
        ("FOO=\"bar\\\\\\n\\ b\\az\"", "FOO", "bar\\\n\\ b\x07z"),
        ("FOO=\"bar\\\\r\\ b\\az\"", "FOO", "bar\\r\\ b\x07z"),
        ("FOO=\"bar\\nbaz\\\\\"", "FOO", "bar\nbaz\\"),
        ("KEY=\"\\0123\"", "KEY", "S"),
        ("KEY=\"\\0351\"", "KEY", "é"),
        ("KEY=\"\\01\"", "KEY", "\\01"),
        ("KEY=\"\\x07\"", "KEY", "\\x07"),
        ("KEY=\"\\u12e4\"", "KEY", "\\u12e4"),
        ("KEY=\"\\U00101234\"", "KEY", "\\U00101234"),
        ("KEY=\"\\é\"", "KEY", "\\é"),
        (
            "TEST_URLS=\"stratum+tcp://a:3333\nstratum+tcp://b:443\"",
            "TEST_URLS",
            "stratum+tcp://a:3333\nstratum+tcp://b:443",
        ),
        // escaped dollars are not interpolated
        ("FOO=\"foo\\$BAR\"", "FOO", "foo$BAR"),
        ("FOO=\"foo\\${BAR}\"", "FOO", "foo${BAR}"),
        ("FOO=foo$$BAR", "FOO", "foo$BAR"),
    ];
    for (input, key, value) in cases {
        let parsed = parse(input);
        assert_eq!(parsed.env.get(key), Some(*value), "input {input:?}");
        assert_eq!(parsed.env.len(), 1, "input {input:?}");
    }
}

#[test]
fn files_with_several_statements() {
    let text = "\u{feff}# a comment\n\n  \t# indented comment\nONE=1\r\nTWO='2'\nTHREE = \"3\"\n\
                MULTI=\"first line\nsecond line\"\nLAST=last value\n";
    let parsed = parse(text);
    let got: Vec<(&str, &str, usize)> = parsed
        .env
        .entries()
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ONE", "1", 4),
            ("TWO", "2", 5),
            ("THREE", "3", 6),
            ("MULTI", "first line\nsecond line", 7),
            ("LAST", "last value", 9),
        ]
    );
    assert!(parsed.warnings.is_empty());
    for blank in ["", "\n", "\r\n", "\t\t ", "# Comment", "\t # comment"] {
        assert!(parse(blank).env.is_empty(), "{blank:?}");
    }
}

#[test]
fn later_keys_replace_earlier_ones() {
    let parsed = parse("A=1\nB=2\nA=3\n");
    assert_eq!(parsed.env.get("A"), Some("3"));
    assert_eq!(parsed.env.entries()[0].line, 3);
    assert_eq!(parsed.env.len(), 2);
}

#[test]
fn values_interpolate_earlier_keys_of_the_same_file() {
    // (file, key, value)
    let cases: &[(&str, &str, &str)] = &[
        ("FOO=test\nBAR=$FOO", "BAR", "test"),
        ("FOO=test\nBAR=${FOO}bar", "BAR", "testbar"),
        ("BAR=$FOO", "BAR", ""),
        ("FOO=test\nBAR=\"quote $FOO\"", "BAR", "quote test"),
        ("FOO=test\nBAR='quote $FOO'", "BAR", "quote $FOO"),
        (
            "FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"",
            "BAR",
            "foo${FOO} test",
        ),
        ("BAR=$FOO\nFOO=later", "BAR", ""),
        ("A=1\nA=${A}2", "A", "12"),
        (
            "EMPTY_VAR=\nRESULT=${UNSET_VAR:-Default Value}",
            "RESULT",
            "Default Value",
        ),
        (
            "EMPTY_VAR=\nRESULT=${EMPTY_VAR:-Default Value}",
            "RESULT",
            "Default Value",
        ),
        (
            "TEST_VAR=Test Value\nRESULT=${TEST_VAR:-Default}",
            "RESULT",
            "Test Value",
        ),
        (
            "EMPTY_VAR=\nRESULT=${EMPTY_VAR-Default Value}",
            "RESULT",
            "",
        ),
        ("EMPTY_VAR=\nRESULT=${EMPTY_VAR?Test error}", "RESULT", ""),
        ("TEST_VAR=x\nRESULT=${TEST_VAR:?Test error}", "RESULT", "x"),
        (
            "OPTION_A=1\nOPTION_D=${OPTION_A}_${OPTION_A}",
            "OPTION_D",
            "1_1",
        ),
    ];
    for (text, key, value) in cases {
        assert_eq!(parse(text).env.get(key), Some(*value), "input {text:?}");
    }
}

#[test]
fn unset_references_and_bare_keys_warn() {
    let parsed = parse("A=x $NOPE\nB=\"${ALSO_NOT}\"\nBARE\n");
    let got: Vec<(usize, usize)> = parsed.warnings.iter().map(|w| (w.line, w.col)).collect();
    assert_eq!(got, vec![(1, 5), (2, 4), (3, 1)]);
    assert!(parsed.warnings[0].message.contains("`NOPE` is not set"));
    assert!(parsed.warnings[2].message.contains("`BARE` has no value"));
    assert_eq!(parsed.env.get("BARE"), None);
}

#[test]
fn errors_name_line_and_column() {
    // (input, line, col, part of the message)
    let cases: &[(&str, usize, usize, &str)] = &[
        ("lol$wut", 1, 4, "unexpected character '$'"),
        ("A=1\nKEY NAME=x", 2, 1, "contains a space"),
        ("=\"value\"", 1, 1, "has no key"),
        ("A=1\n  KEY=\"", 2, 7, "unterminated quoted value"),
        ("KEY=\"value", 1, 5, "unterminated"),
        ("KEY=\"value\\\"", 1, 5, "unterminated"),
        ("KEY=\"value'", 1, 5, "unterminated"),
        ("KEY='", 1, 5, "unterminated"),
        ("KEY='value", 1, 5, "unterminated"),
        ("KEY='value\\'", 1, 5, "unterminated"),
        ("KEY='value\"", 1, 5, "unterminated"),
        ("KEY=\"a\" b", 1, 9, "after the closing quote"),
        (
            "A=1\nRESULT=${UNSET_VAR:?Test error}",
            2,
            8,
            "UNSET_VAR is not set or is empty",
        ),
        (
            "RESULT=${UNSET_VAR?Test error}",
            1,
            8,
            "UNSET_VAR is not set: Test error",
        ),
        ("É=1\nX=ü ${1}", 2, 5, "invalid interpolation `${1}`"),
        ("X=\"\\n\\n${1}\"", 1, 8, "invalid interpolation"),
        ("X=\"a\nb ${1}\"", 2, 3, "invalid interpolation"),
    ];
    for (input, line, col, part) in cases {
        let e = error(input);
        assert_eq!(
            (e.line, e.col),
            (*line, *col),
            "input {input:?}: {}",
            e.message
        );
        assert!(e.message.contains(part), "input {input:?}: {}", e.message);
    }
}

#[test]
fn limits() {
    let big = "A=".to_string() + &"x".repeat(MAX_DOTENV_BYTES);
    assert!(error(&big).message.contains("larger than"));

    let many: String = (0..=MAX_ENTRIES).map(|i| format!("K{i}=v\n")).collect();
    let e = error(&many);
    assert_eq!(e.line, MAX_ENTRIES + 1);
    assert!(e.message.contains("more than 4096 keys"), "{}", e.message);

    // values that double each line hit the total cap instead of growing without bound
    let mut doubling = format!("A={}\n", "x".repeat(1000));
    for i in 0..20 {
        doubling.push_str(&format!("A{i}=${{A}}${{A}}\nA=${{A{i}}}\n"));
    }
    assert!(error(&doubling).message.contains("add up to more than"));
}

#[test]
fn parsed_files_feed_a_lookup() {
    let host = parse("TAG=host\n").env;
    let committed = parse("TAG=committed\nONLY=c\n").env;
    let vars = crate::model::compose::interpolate::Lookup::new(Some(&host), Some(&committed));
    let tag = vars.get("TAG").unwrap();
    assert_eq!((tag.value, tag.secret), ("host", true));
    let only = vars.get("ONLY").unwrap();
    assert_eq!((only.value, only.secret), ("c", false));
    assert!(vars.get("NONE").is_none());
}
