//! Encrypted files through loading, resolving and planning, without Docker: values reach
//! the container spec, a rotation (by commit or on the host) replaces exactly the
//! services that use the file with a reason naming only the file, a file that does not
//! decrypt stops its service before anything is created, and the decrypted values are
//! masked.

use std::path::Path;

use super::tests::{host_keys, seal};
use super::HostKeys;
use crate::model::{load_tree, MemTree};
use crate::plan::tests::converged;
use crate::plan::{plan, Action, Desired, EnvFile, SecretFile};

const COMPOSE: &str = "\
name: shop
secrets:
  db: { file: ./secrets/db.age }
services:
  api:
    image: reg.example/api:1
    env_file: [secrets/api.env.age]
    secrets: [db]
  worker:
    image: reg.example/api:1
    env_file: [secrets/api.env.age, host.env]
  web:
    image: reg.example/web:1
    env_file: [host.env]
";

fn desired(keys: &HostKeys, env: &[u8], db: &[u8], env_dir: &Path) -> Desired {
    let tree = MemTree::new()
        .with("compose.yaml", COMPOSE)
        .with("secrets/api.env.age", env)
        .with("secrets/db.age", db);
    let loaded = load_tree(&tree, "compose.yaml").unwrap();
    let spec = loaded
        .spec
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics));
    Desired::resolve_with(spec, env_dir, keys)
}

/// Each service's action and reasons.
fn changes(new: &Desired, old: &Desired) -> Vec<(String, Action, Vec<String>)> {
    plan(new, &converged(old))
        .services
        .into_iter()
        .map(|s| (s.service, s.action, s.reasons))
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    env_dir: std::path::PathBuf,
    keys: HostKeys,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("env");
    std::fs::create_dir(&env_dir).unwrap();
    std::fs::write(env_dir.join("host.env"), "REGION=eu\n").unwrap();
    let (keys, _) = host_keys(dir.path(), "host.key");
    Fixture {
        _dir: dir,
        env_dir,
        keys,
    }
}

#[test]
fn decrypted_values_reach_the_spec_and_are_masked() {
    let f = fixture();
    let env = seal(&f.keys, b"DB_PASSWORD=s3cret-planted-env\n", true);
    let db = seal(&f.keys, b"s3cret-planted-file\n", false);
    let d = desired(&f.keys, &env, &db, &f.env_dir);
    assert_eq!(
        d.services["api"].env_file,
        EnvFile::Loaded(vec![("DB_PASSWORD".into(), "s3cret-planted-env".into())])
    );
    assert_eq!(
        d.services["worker"].env_file,
        EnvFile::Loaded(vec![
            ("DB_PASSWORD".into(), "s3cret-planted-env".into()),
            ("REGION".into(), "eu".into())
        ])
    );
    let Ok(SecretFile::Decrypted(plain)) = &d.services["api"].secret_files["db"] else {
        panic!("{:?}", d.services["api"].secret_files);
    };
    assert_eq!(&plain[..], b"s3cret-planted-file\n");
    // Nothing a plan, a label or a debug print shows holds a value.
    let shown = format!(
        "{:?} {} {:?}",
        d.services["api"].secret_files,
        d.services["api"].parts_label(),
        plan(&d, &[])
    );
    assert!(!shown.contains("planted"), "{shown}");
    let redactor = crate::executor::Redactor::from_desired(&d);
    assert_eq!(
        redactor.redact("connect s3cret-planted-env / s3cret-planted-file"),
        "connect *** / ***"
    );
}

#[test]
fn a_committed_rotation_replaces_exactly_the_services_that_use_the_file() {
    let f = fixture();
    let db = seal(&f.keys, b"db-planted", true);
    let old = desired(
        &f.keys,
        &seal(&f.keys, b"DB_PASSWORD=one-planted\n", true),
        &db,
        &f.env_dir,
    );
    // Encrypted again to the same content (a rekey): nothing moves.
    let rekeyed = desired(
        &f.keys,
        &seal(&f.keys, b"DB_PASSWORD=one-planted\n", false),
        &seal(&f.keys, b"db-planted", true),
        &f.env_dir,
    );
    assert!(plan(&rekeyed, &converged(&old)).in_sync());

    let rotated = desired(
        &f.keys,
        &seal(&f.keys, b"DB_PASSWORD=two-planted\n", true),
        &db,
        &f.env_dir,
    );
    let reason = vec!["env_file secrets/api.env.age changed".to_string()];
    assert_eq!(
        changes(&rotated, &old),
        [
            ("api".to_string(), Action::Replace, reason.clone()),
            ("web".to_string(), Action::InSync, vec![]),
            ("worker".to_string(), Action::Replace, reason),
        ]
    );
    let secret = desired(
        &f.keys,
        &seal(&f.keys, b"DB_PASSWORD=one-planted\n", true),
        &seal(&f.keys, b"db2-planted", true),
        &f.env_dir,
    );
    let got = changes(&secret, &old);
    assert_eq!(
        got[0],
        (
            "api".to_string(),
            Action::Replace,
            vec!["secret secrets/db.age changed".to_string()]
        )
    );
    assert!(
        got[1..].iter().all(|(_, a, _)| *a == Action::InSync),
        "{got:?}"
    );
}

#[test]
fn a_host_side_edit_replaces_exactly_the_services_that_read_that_file() {
    let f = fixture();
    let env = seal(&f.keys, b"DB_PASSWORD=one-planted\n", true);
    let db = seal(&f.keys, b"db-planted", true);
    let old = desired(&f.keys, &env, &db, &f.env_dir);
    std::fs::write(f.env_dir.join("host.env"), "REGION=us\n").unwrap();
    let new = desired(&f.keys, &env, &db, &f.env_dir);
    let reason = vec!["env_file host.env changed".to_string()];
    assert_eq!(
        changes(&new, &old),
        [
            ("api".to_string(), Action::InSync, vec![]),
            ("web".to_string(), Action::Replace, reason.clone()),
            ("worker".to_string(), Action::Replace, reason),
        ]
    );
}

#[test]
fn a_file_for_another_host_stops_its_services_before_anything_is_created() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (other, _) = host_keys(dir.path(), "other.key");
    let env = seal(&other, b"DB_PASSWORD=not-ours-planted\n", true);
    let db = seal(&other, b"not-ours-planted", true);
    let d = desired(&f.keys, &env, &db, &f.env_dir);
    let EnvFile::Unreadable(why) = &d.services["api"].env_file else {
        panic!("{:?}", d.services["api"].env_file);
    };
    let mine = &f.keys.recipients()[0];
    assert_eq!(
        why,
        &format!("env_file secrets/api.env.age is not encrypted to this host (its recipient: {mine}); add that line to .berth/recipients and run `berth secrets rekey`")
    );
    let Err(why) = &d.services["api"].secret_files["db"] else {
        panic!("decrypted");
    };
    assert!(
        why.starts_with("secret secrets/db.age is not encrypted to this host"),
        "{why}"
    );
    // The container spec is refused, so no container is made, with the message as said.
    let opts = crate::executor::ApplyOptions::default();
    for svc in ["api", "worker"] {
        let err = crate::executor::container::replica_spec(
            "shop",
            &d.services[svc],
            1,
            "shop-x-1",
            &opts,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("secrets/api.env.age is not encrypted to this host"),
            "{err}"
        );
        assert!(!err.to_string().contains("planted"));
    }
    // The service that does not use it is untouched.
    assert!(crate::executor::container::replica_spec(
        "shop",
        &d.services["web"],
        1,
        "shop-web-1",
        &opts
    )
    .is_ok());
}
