//! Encrypted files (`.age`) named by a compose file are the repository's: read from the
//! commit, within the repository, one file, and no larger than the limit; a path that
//! leaves the repository or a symlink to a host file is refused at load.

use super::*;

const STACK: &str = "name: shop
secrets:
  db: { file: ./secrets/db.age }
  host_key: { file: /etc/berth/shop/key.age }
services:
  api:
    image: reg.example/api:1
    env_file: [secrets/api.env.age, api.env]
    secrets: [db, host_key]
";

#[test]
fn relative_age_files_are_read_from_the_repository_and_absolute_ones_stay_on_the_host() {
    let loaded = load_files(
        &[
            ("stack/compose.yaml", STACK),
            ("stack/secrets/api.env.age", "cipher-env"),
            ("stack/secrets/db.age", "cipher-db"),
        ],
        "stack",
    );
    let s = loaded
        .spec
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics));
    let api = &s.services["api"];
    let files: Vec<(String, Option<&[u8]>)> = api
        .env_files
        .iter()
        .map(|f| (f.path.display().to_string(), f.sealed.as_deref()))
        .collect();
    assert_eq!(
        files,
        [
            (
                "stack/secrets/api.env.age".to_string(),
                Some(&b"cipher-env"[..])
            ),
            ("api.env".to_string(), None)
        ]
    );
    let secrets: Vec<(String, Option<&[u8]>)> = api
        .volumes
        .iter()
        .filter_map(|m| match &m.source {
            MountSource::Secret { path, sealed, .. } => {
                Some((path.display().to_string(), sealed.as_deref()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        secrets,
        [
            ("stack/secrets/db.age".to_string(), Some(&b"cipher-db"[..])),
            ("/etc/berth/shop/key.age".to_string(), None)
        ]
    );
}

#[test]
fn an_age_path_out_of_the_repository_missing_or_too_large_is_refused_where_written() {
    let yaml = "name: shop
secrets:
  db: { file: ../../etc/shadow.age }
services:
  api:
    image: reg.example/api:1
    env_file: [gone.env.age, big.env.age]
    secrets: [db]
";
    let big = "x".repeat(crate::secrets::MAX_SEALED_BYTES + 1);
    let loaded = load_files(
        &[("stack/compose.yaml", yaml), ("stack/big.env.age", &big)],
        "stack",
    );
    assert!(loaded.spec.is_none());
    let text = loaded.diagnostics.to_string();
    for want in [
        "stack/compose.yaml:3:15: error: secrets.db.file: `../../etc/shadow.age` leads outside the repository; an encrypted file (`.age`) is a repository file",
        "stack/compose.yaml:7:16: error: services.api.env_file[0]: `gone.env.age` does not exist in the repository (looked for `stack/gone.env.age`)",
        "stack/compose.yaml:7:30: error: services.api.env_file[1]: `big.env.age` is larger than 1024 KiB",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn a_symlinked_age_file_pointing_at_a_host_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "host-file-planted").unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "name: shop\nservices:\n  api:\n    image: reg.example/api:1\n    env_file: [api.env.age]\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("api.env.age")).unwrap();
    let tree = crate::model::FsTree::new(dir.path(), "", std::path::Path::new(".")).unwrap();
    let loaded = load_tree(&tree, "compose.yaml").expect("readable");
    assert!(loaded.spec.is_none());
    let text = loaded.diagnostics.to_string();
    assert!(
        text.contains("`api.env.age` leads outside the repository"),
        "{text}"
    );
    assert!(!text.contains("planted"), "{text}");
}
