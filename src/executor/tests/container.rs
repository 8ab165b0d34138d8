//! Container specs from desired services: host paths checked again right before the
//! create, and options passed through with berth's defaults kept.

use std::collections::BTreeMap;

use crate::executor::container::*;
use crate::model::{load_tree_with, AllowedHostPath, LoadOptions, MemTree};
use crate::plan::Desired;
use crate::runtime::labels;

#[test]
fn a_host_path_is_checked_again_right_before_the_create() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    std::fs::create_dir(base.join("data")).unwrap();
    let allowed = vec![AllowedHostPath::writable(&base)];
    let yaml = format!(
        "project: shop\nservices:\n  api:\n    image: registry.example.com/api:1\n    volumes: [\"{}:/data\"]\n",
        base.join("data").display()
    );
    let tree = MemTree::new().with("berth.yaml", yaml.as_str());
    let opts = LoadOptions {
        allow_host_paths: allowed.clone(),
        check_on_host: true,
        host_env: None,
        project: None,
    };
    let loaded = load_tree_with(&tree, "berth.yaml", &opts).unwrap();
    let d = Desired::resolve(loaded.spec.unwrap(), &base);
    let apply = crate::executor::ApplyOptions {
        allow_host_paths: allowed,
        ..Default::default()
    };
    let spec = replica_spec("shop", &d.services["api"], 1, "shop-api-1", &apply).unwrap();
    assert_eq!(
        spec.mounts[0].source,
        base.join("data").display().to_string()
    );
    // Between the load and the create, the real directory becomes a link.
    std::fs::remove_dir(base.join("data")).unwrap();
    std::os::unix::fs::symlink("/", base.join("data")).unwrap();
    let e = replica_spec("shop", &d.services["api"], 1, "shop-api-1", &apply).unwrap_err();
    assert!(e.to_string().contains("passes through the symlink"), "{e}");
    // And on a host that no longer allows it at all.
    let none = crate::executor::ApplyOptions::default();
    let e = replica_spec("shop", &d.services["api"], 1, "shop-api-1", &none).unwrap_err();
    assert!(
        e.to_string()
            .contains("outside the host paths this host allows"),
        "{e}"
    );
}

#[test]
fn options_reach_the_container_spec_with_berths_defaults_kept() {
    let yaml = "services:\n  app:\n    image: reg.example/app:1.2\n    labels: { team: web }\n    logging: { driver: json-file, options: { max-size: 1m } }\n    user: \"1000\"\n";
    let tree = MemTree::new().with("stack/compose.yaml", yaml);
    let loaded = crate::model::load_tree(&tree, "stack").unwrap();
    let d = Desired::resolve(loaded.spec.unwrap(), std::path::Path::new("/nonexistent"));
    let apply = crate::executor::ApplyOptions::default();
    let spec = replica_spec("stack", &d.services["app"], 1, "stack-app-1", &apply).unwrap();
    assert_eq!(spec.labels["team"], "web");
    assert_eq!(spec.labels[labels::PROJECT], "stack");
    assert!(spec.init, "berth's init stays on unless `init: false`");
    assert_eq!(spec.user.as_deref(), Some("1000"));
    let (driver, options) = spec.log.unwrap();
    assert_eq!(driver, "json-file");
    assert_eq!(
        options,
        BTreeMap::from([
            ("max-file".to_string(), "3".to_string()),
            ("max-size".to_string(), "1m".to_string()),
        ])
    );
}
