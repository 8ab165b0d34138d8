use super::*;

fn tree_with<'r>(repo: &'r Repository, files: &[(&str, &[u8])]) -> CommitTree<'r> {
    let mut builder = repo.treebuilder(None).unwrap();
    for (name, bytes) in files {
        let blob = repo.blob(bytes).unwrap();
        builder.insert(name, blob, 0o100644).unwrap();
    }
    let tree = repo.find_tree(builder.write().unwrap()).unwrap();
    CommitTree {
        repo,
        tree,
        commit: "0".repeat(40),
    }
}

#[test]
fn a_blob_past_the_limit_is_refused_by_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let big = vec![b'#'; (1 << 20) + 1];
    let view = tree_with(&repo, &[("berth.yaml", &big), ("small.yaml", b"a: 1\n")]);
    assert_eq!(
        view.read_limited("berth.yaml", 1 << 20),
        Ok(Some(Limited::TooLarge))
    );
    assert_eq!(
        view.read_limited("small.yaml", 1 << 20),
        Ok(Some(Limited::Bytes(b"a: 1\n".to_vec())))
    );
    let loaded =
        crate::model::load_tree_with(&view, "berth.yaml", &LoadOptions::default()).unwrap();
    let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.headline()).collect();
    assert_eq!(
        errors,
        ["berth.yaml@000000000000:1:1: error: the file is larger than 1024 KiB; split it or trim it"]
    );
}

/// `--path` repeated: the commit's compose files are merged in order; an override
/// file in the directory is read only when named.
#[test]
fn several_paths_of_a_commit_are_merged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&work)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    std::fs::create_dir_all(work.join("stack")).unwrap();
    git(&["init", "-q", "-b", "main"]);
    let files: [(&str, &str); 3] = [
        (
            "stack/compose.yaml",
            "services:\n  app:\n    image: reg.example/app:1\n",
        ),
        (
            "stack/compose.prod.yml",
            "services:\n  app:\n    deploy:\n      replicas: 3\n",
        ),
        (
            "stack/compose.override.yml",
            "services:\n  app:\n    deploy:\n      replicas: 5\n",
        ),
    ];
    for (p, text) in files {
        std::fs::write(work.join(p), text).unwrap();
    }
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "stack"]);
    let replicas = |paths: &[&str]| {
        let source = GitSource::new(
            &work.display().to_string(),
            "main",
            paths[0],
            &dir.path().join("state"),
            GitAuth::default(),
        )
        .with_more_paths(&paths[1..].iter().map(|p| p.to_string()).collect::<Vec<_>>());
        let oid = source.fetch().unwrap();
        let loaded = source.load(oid, &LoadOptions::default()).unwrap();
        match loaded.spec {
            Some(spec) => (spec.project, spec.services["app"].replicas),
            None => panic!("{}", loaded.diagnostics),
        }
    };
    assert_eq!(replicas(&["stack"]), ("stack".to_string(), 1));
    assert_eq!(
        replicas(&["stack/compose.yaml", "stack/compose.prod.yml"]),
        ("stack".to_string(), 3)
    );
    assert_eq!(
        replicas(&[
            "stack",
            "stack/compose.prod.yml",
            "stack/compose.override.yml"
        ]),
        ("stack".to_string(), 5)
    );
}
