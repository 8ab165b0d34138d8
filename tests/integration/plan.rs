//! `berth validate` and `berth plan` against the live engine.

use crate::support::{images, Project};
use crate::{berth, Stack};

fn manifest_dir() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

#[test]
fn validate_accepts_the_reference_stack() {
    let r = berth(["validate", &format!("{}/desired", manifest_dir())]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        format!(
            "{}/desired: valid: project shop, 4 services, 1 migration (0 errors, 0 warnings)\n",
            manifest_dir()
        )
    );
}

#[test]
fn the_examples_are_valid() {
    for dir in ["examples/minimal", "examples/demo"] {
        let r = berth(["validate", &format!("{}/{dir}", manifest_dir())]);
        assert_eq!(r.code, 0, "{dir}: {r:?}");
        assert!(r.stdout.contains(": valid: project "), "{}", r.stdout);
    }
}

#[test]
fn validate_reports_every_mistake_and_exits_1() {
    let s = Stack::new();
    s.write("project: shop\nservices:\n  api:\n    image: x/api:latest\n    replica: 2\n    update: { order: sideways }\n");
    let r = berth(["validate", &s.path().display().to_string()]);
    assert_eq!(r.code, 1, "{r:?}");
    let file = s.path().join("berth.yaml").display().to_string();
    let headlines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains(": error: "))
        .collect();
    assert_eq!(
        headlines,
        [
            format!("{file}:4:12: error: services.api.image: image `x/api:latest` is not pinned (`latest` moves); use an explicit tag such as `x/api:sha-<git sha>` or a digest"),
            format!("{file}:5:5: error: services.api.replica: unknown key `replica`; did you mean `replicas`?"),
            format!("{file}:6:22: error: services.api.update.order: unknown update order the string `sideways`; use `start-first` or `stop-first`"),
        ]
    );
    assert!(
        r.stdout.ends_with(&format!(
            "{}: invalid (3 errors, 1 warning)\n",
            s.path().display()
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn validate_of_a_missing_path_is_a_usage_error() {
    let r = berth(["validate", "/nonexistent/berth"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: /nonexistent/berth: no such file or directory\n"
    );
}

#[test]
fn plan_of_the_reference_stack_on_an_empty_engine_creates_everything() {
    let r = berth(["plan", "--file", &format!("{}/desired", manifest_dir())]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        r.stdout,
        "\
+ api     create      2 replicas of sha-3f2c1e9
+ proxy   create      1 replica of 2.7-alpine
+ web     create      1 replica of sha-9a8b7c6
+ worker  create      3 replicas of sha-3f2c1e9
project shop: 4 of 4 services to change
"
    );
}

fn reason_stack(
    project: &str,
    image: &str,
    env_value: &str,
    env_file: &str,
    conf: &str,
    s: &Stack,
) {
    let env_path = s.env.path().join("api.env");
    std::fs::write(&env_path, env_file).unwrap();
    s.file("files/app.conf", conf);
    s.write(&format!(
        "project: {project}
services:
  api:
    image: {image}
    env: {{ MODE: {env_value} }}
    env_file: {}
    volumes: [\"./files/app.conf:/etc/app.conf:ro\"]
    update: {{ monitor: 0s }}
",
        env_path.display()
    ));
}

#[test]
fn plan_is_in_sync_after_apply_and_names_each_change() {
    let p = Project::new("reasons");
    let img = images();
    let s = Stack::new();
    reason_stack(
        p.name(),
        &img.app_v1,
        "a",
        "SECRET_TOKEN=tok-111111\n",
        "x=1\n",
        &s,
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let r = s.plan();
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            format!(
                "= api  in sync     1/1 replicas\nproject {}: in sync\n",
                p.name()
            )
            .as_str()
        )
    );

    // Each env file is named by the path the desired state gives it.
    let env_file_changed = format!(
        "env_file {} changed",
        s.env.path().join("api.env").display()
    );
    let cases = [
        (
            (
                img.app_v2.as_str(),
                "a",
                "SECRET_TOKEN=tok-111111\n",
                "x=1\n",
            ),
            "image v1 → v2",
        ),
        (
            (
                img.app_v1.as_str(),
                "b",
                "SECRET_TOKEN=tok-111111\n",
                "x=1\n",
            ),
            "env MODE changed",
        ),
        (
            (
                img.app_v1.as_str(),
                "a",
                "SECRET_TOKEN=tok-222222\n",
                "x=1\n",
            ),
            env_file_changed.as_str(),
        ),
        (
            (
                img.app_v1.as_str(),
                "a",
                "SECRET_TOKEN=tok-111111\n",
                "x=2\n",
            ),
            "file files/app.conf changed",
        ),
    ];
    for ((image, env, env_file, conf), reason) in cases {
        reason_stack(p.name(), image, env, env_file, conf, &s);
        let r = s.plan();
        assert_eq!(r.code, 3, "{reason}: {r:?}");
        assert_eq!(
            r.stdout,
            format!(
                "~ api  replace     {reason}\nproject {}: 1 of 1 service to change\n",
                p.name()
            )
        );
        assert!(!r.stdout.contains("tok-") && !r.stderr.contains("tok-"));
    }
}
