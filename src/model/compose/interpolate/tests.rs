use super::dotenv::DotEnv;
use super::*;

/// The committed `.env` of these tests: `FOO` set, `BAR` set and empty, no `UNSET_VAR`.
const COMMITTED: &str = "FOO=first\nBAR=\nTAG=1.2\nV_2=two\n_x=under\nDOLLAR='a$FOO'\nNAME=ünï\n";
/// The host's `.env`: a secret, and a value that overrides the committed one.
const HOST: &str = "PASSWORD=s3cret\nTAG=host-tag\nEMPTY_SECRET=\n";

fn env(text: &str) -> DotEnv {
    DotEnv::parse(text).expect("test .env parses").env
}

fn run(text: &str) -> Result<Interpolated, InterpolationError> {
    let host = env(HOST);
    let committed = env(COMMITTED);
    interpolate(text, &Lookup::new(Some(&host), Some(&committed)))
}

fn value(text: &str) -> String {
    match run(text) {
        Ok(done) => done.value,
        Err(e) => panic!("{text:?} failed: {}", e.message),
    }
}

fn error(text: &str) -> InterpolationError {
    match run(text) {
        Ok(done) => panic!("{text:?} gave {:?}, expected an error", done.value),
        Err(e) => e,
    }
}

#[test]
fn substitutes_every_form() {
    let cases: &[(&str, &str)] = &[
        // no expression
        ("foo", "foo"),
        ("", ""),
        // plain and braced
        ("This $FOO var", "This first var"),
        ("This ${FOO} var", "This first var"),
        ("$FOO-bar", "first-bar"),
        ("${FOO}${FOO}", "firstfirst"),
        ("$FOO$FOO", "firstfirst"),
        // unset and empty without default
        ("This ${missing} var", "This  var"),
        ("This ${BAR} var", "This  var"),
        ("This $missing var", "This  var"),
        // :- and -
        ("ok ${missing:-def}", "ok def"),
        ("ok ${missing-def}", "ok def"),
        ("ok ${BAR:-def}", "ok def"),
        ("ok ${BAR-def}", "ok "),
        ("ok ${FOO:-def}", "ok first"),
        ("ok ${FOO-def}", "ok first"),
        ("ok ${missing:-}", "ok "),
        ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
        // :? and ? when satisfied
        ("ok ${FOO:?err}", "ok first"),
        ("ok ${FOO?err}", "ok first"),
        ("ok ${BAR?err}", "ok "),
        // :+ and +
        ("ok ${UNSET_VAR:+presence_value}", "ok "),
        ("ok ${UNSET_VAR+presence_value}", "ok "),
        ("ok ${FOO:+presence_value}", "ok presence_value"),
        ("ok ${FOO+presence_value}", "ok presence_value"),
        ("ok ${BAR+presence_value}", "ok presence_value"),
        ("ok ${BAR:+presence_value}", "ok "),
        // the first operator after the name decides
        ("${UNSET_VAR-myerror?msg}", "myerror?msg"),
        ("${FOO?bar-baz}", "first"),
        (
            "${BAR:-default_value_for_empty_var}",
            "default_value_for_empty_var",
        ),
        (
            "${UNSET_VAR-default_value_for_unset_var}",
            "default_value_for_unset_var",
        ),
        ("${UNSET_VAR:-a:?b-c+d}", "a:?b-c+d"),
        // text around expressions does not change them
        ("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
        ("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "),
        ("-ok ${FOO:-defaultValue}", "-ok first"),
        (":-ok ${UNSET-defaultValue}", ":-ok defaultValue"),
        (":-ok ${BAR-defaultValue}", ":-ok "),
        (":?ok ${BAR-defaultValue}", ":?ok "),
        (":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
        (":+ok ${BAR:-defaultValue}", ":+ok defaultValue"),
        ("+ok ${BAR-defaultValue}", "+ok "),
        ("?ok ${BAR:-defaultValue}", "?ok defaultValue"),
        // adjacent text
        ("api:${TAG}-slim", "api:host-tag-slim"),
        ("${HOST_IP:-127.0.0.1}:5432:5432", "127.0.0.1:5432:5432"),
        (
            "registry.example.com/api:${MISSING_TAG:-latest}",
            "registry.example.com/api:latest",
        ),
        // names with digits and underscores; names are case-sensitive
        ("${V_2}/$V_2/$_x/${_x}", "two/two/under/under"),
        ("$V_2x", ""),
        ("${foo}", ""),
        // non-ASCII around and inside
        ("é${FOO}ü", "éfirstü"),
        ("日本$FOO語", "日本first語"),
        ("${missing:-ünï}", "ünï"),
        ("$NAME", "ünï"),
        ("€$", "€$"),
        // values are not interpolated again
        ("$DOLLAR", "a$FOO"),
    ];
    for (input, expected) in cases {
        assert_eq!(value(input), *expected, "input {input:?}");
    }
}

#[test]
fn dollar_escapes_and_literal_dollars() {
    let cases: &[(&str, &str)] = &[
        ("$${foo}", "${foo}"),
        ("$$FOO", "$FOO"),
        ("$$$FOO", "$first"),
        ("$$$$", "$$"),
        ("${missing:-$$}", "$"),
        ("${missing:-$${FOO}}", "${FOO}"),
        // a `$` not followed by `$`, `{` or a name stays as written, as in compose-go
        ("a $ string", "a $ string"),
        ("^REGEX$", "^REGEX$"),
        ("$}", "$}"),
        ("$", "$"),
        ("$1X", "$1X"),
        ("price: 5$ each", "price: 5$ each"),
        ("${missing:-$}", "$"),
    ];
    for (input, expected) in cases {
        assert_eq!(value(input), *expected, "input {input:?}");
    }
}

#[test]
fn nested_expressions() {
    let cases: &[(&str, &str)] = &[
        ("ok ${UNSET_VAR-$FOO}", "ok first"),
        ("ok ${UNSET_VAR-${FOO}}", "ok first"),
        ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
        ("ok ${BAR:-$FOO}", "ok first"),
        ("ok ${BAR:-${FOO}}", "ok first"),
        ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
        ("ok ${BAR+$FOO}", "ok first"),
        ("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
        ("${A:-${B:-x}}", "x"),
        ("${A:-${B:-${C:-${FOO}}}}", "first"),
        ("${FOO:-${B:-x}}", "first"),
        // literal braces in a default balance
        ("${missing:-{a}}", "{a}"),
        ("${missing:-{}}", "{}"),
        ("${missing:-a}}", "a}"),
        ("${missing:-{\"k\": 1}}", "{\"k\": 1}"),
    ];
    for (input, expected) in cases {
        assert_eq!(value(input), *expected, "input {input:?}");
    }
}

#[test]
fn required_variables_fail_with_their_message() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
            7,
            "`${UNSET_VAR:?Mandatory Variable Unset}`: UNSET_VAR is not set or is empty: \
             Mandatory Variable Unset",
        ),
        (
            "not ok ${BAR:?Mandatory Variable Empty}",
            7,
            "`${BAR:?Mandatory Variable Empty}`: BAR is not set or is empty: \
             Mandatory Variable Empty",
        ),
        (
            "not ok ${UNSET_VAR?Mandatory Variable Unset}",
            7,
            "`${UNSET_VAR?Mandatory Variable Unset}`: UNSET_VAR is not set: \
             Mandatory Variable Unset",
        ),
        (
            "${UNSET_VAR:?}",
            0,
            "`${UNSET_VAR:?}`: UNSET_VAR is not set or is empty: \
             set it in the host's .env or the committed .env",
        ),
        (
            "${UNSET_VAR?bar-baz}",
            0,
            "`${UNSET_VAR?bar-baz}`: UNSET_VAR is not set: bar-baz",
        ),
        (
            "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
            7,
            "`${UNSET_VAR:?Mandatory Variable ${FOO}}`: UNSET_VAR is not set or is empty: \
             Mandatory Variable first",
        ),
        (
            "api:${API_TAG:?set it in .env}",
            4,
            "`${API_TAG:?set it in .env}`: API_TAG is not set or is empty: set it in .env",
        ),
        // nested: the inner expression is blamed
        (
            "x ${A:-${B:?need B}}",
            7,
            "`${B:?need B}`: B is not set or is empty: need B",
        ),
        // like compose-go, a default is evaluated even when it is not used
        (
            "${FOO:-${B:?need B}}",
            7,
            "`${B:?need B}`: B is not set or is empty: need B",
        ),
    ];
    for (input, offset, message) in cases {
        let e = error(input);
        assert_eq!(e.message, *message, "input {input:?}");
        assert_eq!(e.offset, *offset, "input {input:?}");
        let expr = &input[e.offset..e.offset + e.len];
        assert!(
            expr.starts_with("${") && expr.ends_with('}'),
            "{input:?}: {expr:?}"
        );
    }
}

#[test]
fn a_required_message_built_from_a_secret_is_not_interpolated() {
    let e = error("${MISSING:?password is $PASSWORD}");
    assert!(
        e.message.ends_with(": password is $PASSWORD"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("s3cret"));
}

#[test]
fn malformed_expressions_are_errors_with_offsets() {
    // (input, offset, length, part of the message)
    let cases: &[(&str, usize, usize, &str)] = &[
        ("${", 0, 2, "is not closed"),
        ("${}", 0, 3, "starts with a letter or `_`"),
        ("${ }", 0, 4, "starts with a letter or `_`"),
        ("${ foo}", 0, 7, "starts with a letter or `_`"),
        ("${foo }", 0, 7, "a name is followed by"),
        ("${foo!}", 0, 7, "a name is followed by"),
        ("${1X}", 0, 5, "starts with a letter or `_`"),
        ("a ${VAR/foo/bar} b", 2, 14, "a name is followed by"),
        ("${VAR[key]}", 0, 11, "a name is followed by"),
        ("${VAR:x}", 0, 8, "a name is followed by"),
        ("${VAR:}", 0, 7, "a name is followed by"),
        ("x ${FOO", 2, 5, "is not closed"),
        ("${FOO:-abc", 0, 10, "is not closed"),
        ("${A:-${B}", 0, 9, "is not closed"),
        ("${A:-${1}}", 5, 4, "starts with a letter or `_`"),
        ("ü ${é}", 3, 5, "starts with a letter or `_`"),
        ("${A:-line\nnext}", 0, 9, "ends on the line it starts"),
    ];
    for (input, offset, len, part) in cases {
        let e = error(input);
        assert_eq!(
            (e.offset, e.len),
            (*offset, *len),
            "input {input:?}: {}",
            e.message
        );
        assert!(e.message.contains(part), "input {input:?}: {}", e.message);
        assert!(
            e.message.starts_with("invalid interpolation `"),
            "{}",
            e.message
        );
    }
    let e = error("${1X}");
    assert_eq!(
        e.message,
        "invalid interpolation `${1X}`: a variable name starts with a letter or `_`; \
         write `$$` for a literal `$`"
    );
}

#[test]
fn unset_variables_are_reported_where_used() {
    let done = run("a $ONE ${TWO} ${THREE:-x} ${FOO:-$FOUR} ${BAR:-$FIVE} ${SIX:+$SEVEN}").unwrap();
    let unset: Vec<(&str, usize)> = done
        .unset
        .iter()
        .map(|u| (u.name.as_str(), u.offset))
        .collect();
    // FOUR's default is not used; SEVEN's alternative is not used either.
    assert_eq!(unset, vec![("ONE", 2), ("TWO", 7), ("FIVE", 47)]);
    assert_eq!(done.value, "a   x first  ");
    assert!(
        run("${BAR}").unwrap().unset.is_empty(),
        "empty is not unset"
    );
}

#[test]
fn host_values_win_and_are_secret() {
    let cases: &[(&str, &str, bool)] = &[
        ("$TAG", "host-tag", true),
        ("$FOO", "first", false),
        ("${PASSWORD}", "s3cret", true),
        ("${PASSWORD:+set}", "set", true),
        ("${EMPTY_SECRET:-dflt}", "dflt", true),
        ("${MISSING:-$PASSWORD}", "s3cret", true),
        // an unused branch does not make the value secret
        ("${FOO:-$PASSWORD}", "first", false),
        ("$$PASSWORD", "$PASSWORD", false),
        ("plain", "plain", false),
    ];
    for (input, expected, secret) in cases {
        let done = run(input).unwrap();
        assert_eq!(done.value, *expected, "input {input:?}");
        assert_eq!(done.used_secret, *secret, "input {input:?}");
    }
}

#[test]
fn the_host_values_read_are_listed() {
    let cases: &[(&str, &[&str])] = &[
        ("$TAG-$PASSWORD", &["host-tag", "s3cret"]),
        ("${PASSWORD:+set}", &["s3cret"]),
        ("${EMPTY_SECRET:-dflt}", &[""]),
        ("${FOO:-$PASSWORD}", &[]),
        ("$FOO", &[]),
    ];
    for (input, expected) in cases {
        assert_eq!(run(input).unwrap().secrets, *expected, "input {input:?}");
    }
}

#[test]
fn an_empty_lookup_sets_nothing() {
    let done = interpolate("${HOME:-none} $PATH", &Lookup::empty()).unwrap();
    assert_eq!(done.value, "none ");
    assert_eq!(done.unset[0].name, "PATH");
}

#[test]
fn nesting_is_capped() {
    let ok = format!("{}x{}", "${A:-".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
    assert_eq!(value(&ok), "x");
    let deep = format!(
        "{}x{}",
        "${A:-".repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    let e = error(&deep);
    assert_eq!(e.offset, MAX_DEPTH * 5);
    assert!(e.message.contains("nested more than 32"), "{}", e.message);
    // very deep input fails fast instead of exhausting the stack
    let hostile = "${A:-".repeat(100_000);
    assert!(run(&hostile).is_err());
}

#[test]
fn output_is_capped() {
    let big = format!("BIG={}\n", "x".repeat(300_000));
    let committed = env(&big);
    let vars = Lookup::new(None, Some(&committed));
    assert_eq!(
        interpolate("$BIG$BIG$BIG", &vars).unwrap().value.len(),
        900_000
    );
    let e = interpolate("$BIG$BIG$BIG$BIG", &vars).unwrap_err();
    assert_eq!(e.offset, 12);
    assert!(e.message.contains("longer than"), "{}", e.message);
    // unused branches count too, so the work stays bounded
    let e = interpolate("${FOO-$BIG$BIG}${FOO-$BIG$BIG}", &vars).unwrap_err();
    assert!(e.message.contains("longer than"), "{}", e.message);
    // many references are linear, not quadratic
    let many = "$FOO".repeat(200_000);
    assert_eq!(value(&many).len(), "first".len() * 200_000);
}

#[test]
fn long_expressions_are_shortened_in_messages() {
    let input = format!("${{X:?{}}}", "m".repeat(500));
    let e = error(&input);
    assert_eq!(e.len, input.len());
    assert!(e.message.chars().count() < 300, "{}", e.message);
    assert!(e.message.contains('…'));
}
