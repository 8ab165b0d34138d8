//! The location index and the one-pass value.

use super::*;

const DOC: &str = "\
project: shop
services:
  api:
    image: &app repo/api:sha-1
    ports: [\"80:80\", \"443:443\"]
    update:
      order: start-first
  worker:
    image: *app
";

#[test]
fn keys_and_values_are_located() {
    let idx = LocationIndex::build(DOC).unwrap();
    let api = KeyPath::root().key("services").key("api");
    assert_eq!(idx.key(DOC, &api.key("image")), (4, 5));
    assert_eq!(idx.value(DOC, &api.key("image")), (4, 17));
    assert_eq!(idx.value(DOC, &api.key("ports").index(1)), (5, 22));
    assert_eq!(idx.key(DOC, &api.key("update").key("order")), (7, 7));
    let worker = KeyPath::root().key("services").key("worker");
    assert_eq!(idx.value(DOC, &worker.key("image")), (9, 12));
}

#[test]
fn unknown_paths_fall_back_to_the_nearest_parent() {
    let idx = LocationIndex::build(DOC).unwrap();
    let p = KeyPath::root()
        .key("services")
        .key("api")
        .key("nope")
        .key("deeper");
    assert_eq!(idx.key(DOC, &p), (3, 3));
}

#[test]
fn a_second_document_is_refused_where_it_starts() {
    let err = LocationIndex::build("a: 1\n---\na: 2\n").unwrap_err();
    assert_eq!((err.line, err.col), (2, 1));
    assert!(
        err.message.contains("second YAML document"),
        "{}",
        err.message
    );
}

#[test]
fn syntax_errors_carry_a_position() {
    let err = LocationIndex::build("a: [1, 2\nb: 3\n").unwrap_err();
    assert!(err.line >= 1);
    assert!(!err.message.is_empty());
}

/// The value read in the same pass as the positions, or `None` when it is left to
/// serde_yaml; when read, it is serde_yaml's.
fn one_pass(text: &str) -> Option<Value> {
    LocationIndex::read_within(text, &mut Budget::default(), true)
        .unwrap()
        .value
}

#[test]
fn the_one_pass_value_is_serde_yamls() {
    let scalars = [
        "",
        "~",
        "null",
        "Null",
        "NULL",
        "nULL",
        "true",
        "True",
        "TRUE",
        "tRUE",
        "false",
        "no",
        "yes",
        "on",
        "0",
        "-0",
        "+1",
        "007",
        "-007",
        "+007",
        "0x1F",
        "0o17",
        "0b101",
        "-0x1F",
        "-0o17",
        "-0b11",
        "0x",
        "+-1",
        "1_000",
        "1e3",
        "1.5",
        ".5",
        "5.",
        "-.inf",
        ".inf",
        "+.inf",
        ".NaN",
        "nan",
        "inf",
        "infinity",
        "1e400",
        "18446744073709551615",
        "-9223372036854775808",
        "0.0",
        "1:2",
        "8000/tcp",
        "5s",
        "256m",
        "0.5",
        "s1",
        "${TAG:-x}",
        "a b",
        "2001:db8::1",
        "12:30:00",
        "1.2.3",
    ];
    for s in scalars {
        for written in [s.to_string(), format!("'{s}'"), format!("\"{s}\"")] {
            let doc = format!("k: {written}\nl: [{written}]\nm: {{{written}: {written}}}\n");
            // A few (`[1:2]`) are refused in flow style by one parser or the other.
            if let (Ok(want), Ok(_)) = (
                serde_yaml::from_str::<Value>(&doc),
                LocationIndex::build(&doc),
            ) {
                assert_eq!(one_pass(&doc), Some(want), "{doc}");
            }
            let block = format!("k: {written}\n");
            let want: Value = serde_yaml::from_str(&block).unwrap();
            assert_eq!(one_pass(&block), Some(want), "{block}");
        }
    }
    let docs = [
            DOC,
            "",
            "# only a comment\n",
            "a:\n  - &x {b: 1, c: [1, 2]}\n  - *x\n  - <<: *x\n    d: |\n      text\n      more\n    e: >-\n      folded\n      text\n",
            "? a\n: 1\n",
            "a: &s str\nb: *s\n",
            "[1, 2]\n",
            "plain\n",
            "--- \na: 1\n...\n",
        ];
    for doc in docs {
        let want: Value = serde_yaml::from_str(doc).unwrap();
        assert_eq!(one_pass(doc), Some(want), "{doc}");
    }
    for dir in [
        "desired",
        "examples",
        "tests/compose",
        "tests/hostile/seeds",
    ] {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut todo = vec![root];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                    continue;
                }
                if !p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                let Ok(read) = LocationIndex::read_within(&text, &mut Budget::default(), true)
                else {
                    continue;
                };
                if let Some(v) = read.value {
                    let want: Value = serde_yaml::from_str(&text).unwrap();
                    assert_eq!(v, want, "{}", p.display());
                }
            }
        }
    }
}

/// Merges resolved while the value is built give what serde_yaml's reading, its
/// `apply_merge` and the compose merge pass give, for nested and listed merges.
#[test]
fn merges_resolved_in_the_one_pass_are_the_two_passes_merges() {
    for doc in [
            "a: &a {x: 1, y: 2}\nb: &b {<<: *a, y: 3, z: 4}\nc: {<<: *b, w: 5}\n",
            "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc: {<<: [*a, *b], q: [{<<: *a, k: 1}]}\n",
            "d: &d\n  deploy: {replicas: 2}\n  env: &e {A: 1}\ns:\n  t:\n    <<: *d\n    env: {<<: *e, B: 2}\n",
            "a: {<<: {x: 1, <<: {y: 2}}, x: 0}\n",
            "a: 1\n",
        ] {
            let read = LocationIndex::read_merging(doc, &mut Budget::default()).unwrap();
            assert!(read.merged, "{doc}");
            let mut want: Value = serde_yaml::from_str(doc).unwrap();
            want.apply_merge().unwrap();
            crate::model::compose::yaml::resolve_merges(&mut want).unwrap();
            assert_eq!(read.value, Some(want), "{doc}");
        }
    // A `<<` naming no mapping is left for the caller's merge pass to report.
    for doc in ["a: {<<: 1}\n", "a: &a {x: 1}\nb: {<<: [*a, 2]}\n"] {
        let read = LocationIndex::read_merging(doc, &mut Budget::default()).unwrap();
        assert!(!read.merged, "{doc}");
    }
}

#[test]
fn what_the_one_pass_leaves_to_serde_yaml() {
    for doc in [
        "a: !!str 1\n",
        "a: !custom {b: 1}\n",
        "? [a]\n: 1\n",
        "0x1: a\n1: b\n",
        "a: 340282366920938463463374607431768211455\n",
    ] {
        assert_eq!(one_pass(doc), None, "{doc}");
    }
}
