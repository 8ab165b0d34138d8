//! Every case of the hostile corpus (`tests/hostile/`) ends as an invalid desired state
//! with located, bounded diagnostics: never a panic, a stack overflow or a hang. Each load
//! runs on a thread with a 2 MiB stack, as the agent's worker threads have. No Docker.

#[path = "hostile/corpus.rs"]
mod corpus;

use std::path::Path;

use berth::model::limits::{MAX_DIAGNOSTICS, MAX_EXCERPT_CHARS};
use berth::model::{load_path, load_tree, Loaded, MemTree};
use berth::plan::{Desired, EnvFile};

fn load_small_stack(case: corpus::Case) -> Loaded {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let mut tree = MemTree::new();
            for (path, bytes) in &case.files {
                tree = tree.with(path, bytes.clone());
            }
            load_tree(&tree, case.config()).expect("readable")
        })
        .unwrap()
        .join()
        .expect("the load panicked")
}

#[test]
fn every_case_is_an_error_with_a_message() {
    for case in corpus::cases() {
        let name = case.name;
        let loaded = load_small_stack(case);
        assert!(loaded.spec.is_none(), "{name}: accepted");
        let errors: Vec<_> = loaded.diagnostics.errors().collect();
        assert!(!errors.is_empty(), "{name}: no error");
        assert!(
            loaded.diagnostics.0.len() <= MAX_DIAGNOSTICS + 1,
            "{name}: {} diagnostics",
            loaded.diagnostics.0.len()
        );
        for d in &loaded.diagnostics.0 {
            assert!(!d.message.is_empty(), "{name}: empty message");
            assert!(d.location.line >= 1 && d.location.col >= 1, "{name}: {d}");
            assert!(d.message.chars().count() <= 520, "{name}: {d}");
            let quoted = d.source_line.as_deref().unwrap_or_default();
            assert!(
                quoted.chars().count() <= MAX_EXCERPT_CHARS + 2,
                "{name}: quotes {} characters",
                quoted.chars().count()
            );
        }
        eprintln!(
            "{name}: {}",
            errors[0].headline().chars().take(200).collect::<String>()
        );
    }
}

#[test]
fn the_limits_are_named_in_their_diagnostics() {
    let first = |name: &str| {
        let case = corpus::cases()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap();
        load_small_stack(case)
            .diagnostics
            .errors()
            .next()
            .unwrap()
            .headline()
    };
    assert_eq!(
        first("deep-block-seq"),
        "berth.yaml:1:129: error: the document nests deeper than 64 levels; flatten it"
    );
    assert_eq!(
        first("deep-by-alias"),
        "berth.yaml:64:12: error: the document nests deeper than 64 levels; flatten it"
    );
    assert!(
        first("alias-bomb").contains("aliases expand the desired state to more than 100000 nodes")
    );
    assert!(first("alias-big-scalar")
        .contains("aliases expand the desired state to more than 16 MiB of text"));
    assert!(first("alias-cycle").contains("YAML aliases cannot form a cycle"));
    assert!(first("many-nodes").contains("more than 100000 nodes"));
    assert!(first("long-paths").contains("key paths of this document add up to more than 4 MiB"));
    assert!(first("many-files").contains("more than 256 *.yaml files"));
    assert!(first("big-files").contains("more than 4 MiB together"));
    assert!(first("over-1mib").contains("larger than 1024 KiB"));
    assert_eq!(
        first("invalid-utf8"),
        "berth.yaml:5:16: error: the file is not UTF-8 text; save it as UTF-8"
    );
}

fn spec_with_env_file(env_file: &str) -> berth::model::Spec {
    let yaml = format!(
        "project: hostile\nservices:\n  api:\n    image: registry.example.com/api:v1\n    env_file: {env_file}\n"
    );
    let tree = MemTree::new().with("berth.yaml", yaml);
    let loaded = load_tree(&tree, "berth.yaml").unwrap();
    loaded
        .spec
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics))
}

fn env_error(spec: berth::model::Spec, dir: &Path) -> String {
    let desired = Desired::resolve(spec, dir);
    match &desired.services["api"].env_file {
        EnvFile::Unreadable(why) => why.clone(),
        other => panic!("read: {other:?}"),
    }
}

#[test]
fn an_env_file_that_is_dev_zero_is_refused() {
    let why = env_error(spec_with_env_file("/dev/zero"), Path::new("/dev"));
    assert_eq!(why, "env_file /dev/zero is not a regular file");
}

#[test]
fn an_env_file_that_is_a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("api.env");
    mkfifo(&fifo);
    let why = env_error(spec_with_env_file(&fifo.display().to_string()), dir.path());
    assert_eq!(
        why,
        format!("env_file {} is not a regular file", fifo.display())
    );
}

#[test]
fn a_desired_state_file_that_is_a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("berth.yaml"));
    let err = load_path(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo reads nothing else.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}
