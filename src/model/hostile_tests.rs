//! Hostile input: whoever pushes to the desired state writes every byte the loader reads.
//! Each input here once crashed the process or took unbounded memory; each must end as an
//! ordinary error with a location.

use super::*;

fn load_one(yaml: &str) -> Loaded {
    let tree = MemTree::new().with("berth.yaml", yaml.as_bytes());
    load_tree(&tree, "berth.yaml").expect("readable")
}

fn headlines(loaded: &Loaded) -> Vec<String> {
    loaded.diagnostics.errors().map(|d| d.headline()).collect()
}

/// Loads on a thread with the 2 MiB stack every spawned thread (the agent's workers too)
/// gets, so that a recursion the limits miss shows as a crash here.
fn load_on_small_stack(yaml: String) -> Loaded {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || load_one(&yaml))
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_block_sequences_are_refused_not_a_stack_overflow() {
    let yaml = format!("{}x\n", "- ".repeat(24_000));
    let loaded = load_on_small_stack(yaml);
    assert_eq!(
        headlines(&loaded),
        ["berth.yaml:1:129: error: the document nests deeper than 64 levels; flatten it"]
    );
}

#[test]
fn deep_flow_sequences_are_refused() {
    let yaml = format!("project: x\nservices: {}\n", "[".repeat(48_000));
    let loaded = load_on_small_stack(yaml);
    assert_eq!(
        headlines(&loaded),
        ["berth.yaml:2:266: error: the document nests deeper than 64 levels; flatten it"]
    );
}

#[test]
fn deep_flow_mappings_are_refused() {
    let yaml = format!("project: x\nservices: {}\n", "{a: ".repeat(12_000));
    let loaded = load_on_small_stack(yaml);
    assert_eq!(
        headlines(&loaded),
        ["berth.yaml:2:263: error: the document nests deeper than 64 levels; flatten it"]
    );
}

#[test]
fn a_long_line_of_unknown_keys_gives_bounded_diagnostics() {
    // Just within the line limit.
    let keys: Vec<String> = (0..6_500).map(|i| format!("k{i}: 1")).collect();
    let yaml = format!("{{project: x, {}}}\n", keys.join(", "));
    assert!(yaml.len() > 60_000 && yaml.len() < 64 << 10);
    let loaded = load_one(&yaml);
    let errors: Vec<&Diagnostic> = loaded.diagnostics.errors().collect();
    assert_eq!(errors.len(), 101, "{}", errors.len());
    assert!(errors[..100]
        .iter()
        .all(|d| d.source_line.as_ref().unwrap().chars().count() <= 202));
    assert_eq!(
        errors[100].headline(),
        "berth.yaml:1:804: error: … and 6401 more errors not shown (the first here); fix the ones above and validate again"
    );
}

#[test]
fn a_line_past_the_limit_is_refused_before_it_is_scanned() {
    let keys: Vec<String> = (0..20_000).map(|i| format!("k{i}: 1")).collect();
    let yaml = format!("project: x\nservices: {{{}}}\n", keys.join(", "));
    assert_eq!(
        headlines(&load_one(&yaml)),
        ["berth.yaml:2:65537: error: line 2 is longer than 64 KiB; write a long collection in block style, one entry a line"]
    );
}

#[test]
fn an_alias_bomb_is_refused_before_it_expands() {
    let mut yaml = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    let names: Vec<char> = ('b'..='j').collect();
    let mut prev = 'a';
    for n in names {
        let items = vec![format!("*{prev}"); 10].join(",");
        yaml.push_str(&format!("{n}: &{n} [{items}]\n"));
        prev = n;
    }
    let loaded = load_one(&yaml);
    let errs = headlines(&loaded);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("berth.yaml:5:")
            && errs[0].contains("aliases expand the desired state to more than 100000 nodes"),
        "{errs:?}"
    );
}

#[test]
fn a_huge_duration_is_out_of_range_not_a_panic() {
    let yaml = "project: x\nservices:\n  api:\n    image: x/api:v1\n    stop_grace: 99999999999999999999h\n";
    assert_eq!(
        headlines(&load_one(yaml)),
        ["berth.yaml:5:17: error: services.api.stop_grace: duration `99999999999999999999h` is out of range; use 0s to 1h"]
    );
}
