use std::collections::BTreeMap;

use super::edit::{classify, set_dotenv, Target, Written};
use super::registry::{parse_challenge, Challenge, ManifestUrl};
use super::site::{find_image, Quote};
use super::{prepare, Desired};
use crate::model::{ImageRef, LoadOptions, MemTree};

const GOLDEN: &str = include_str!("../../tests/bump/compose.yaml");
const GOLDEN_BUMPED: &str = include_str!("../../tests/bump/compose.bumped.yaml");

fn desired(configs: &[&str]) -> Desired {
    Desired {
        configs: configs.iter().map(|c| c.to_string()).collect(),
        options: LoadOptions::default(),
    }
}

fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(files[path].clone()).unwrap()
}

#[test]
fn finds_the_scalar_through_merge_keys_anchors_and_quotes() {
    let api = find_image(GOLDEN, "api").unwrap().unwrap();
    assert_eq!(api.value, "registry.example.com/shop/app:sha-1111111");
    assert_eq!(api.quote, Quote::Double);
    assert_eq!(api.line, 5);
    assert_eq!(
        &GOLDEN[api.span.clone()],
        "\"registry.example.com/shop/app:sha-1111111\""
    );
    // Through an alias, the anchored scalar itself, quotes included, the anchor skipped.
    let canary = find_image(GOLDEN, "web-canary").unwrap().unwrap();
    assert_eq!(
        &GOLDEN[canary.span.clone()],
        "'registry.example.com/shop/web:v1.2.3'"
    );
    assert_eq!(canary.quote, Quote::Single);
    assert!(canary.anchored);
    let cache = find_image(GOLDEN, "cache").unwrap().unwrap();
    assert_eq!(
        &GOLDEN[cache.span.clone()],
        "registry.example.com/library/redis:7.2"
    );
    assert_eq!(cache.quote, Quote::Plain);
    assert!(!cache.anchored);
    assert_eq!(find_image(GOLDEN, "nope").unwrap(), None);
}

#[test]
fn a_flow_mapping_and_multibyte_text_before_it_are_spanned_exactly() {
    let yaml = "# café ☕\nservices:\n  api: {image: x/api:v1, command: [a]}\n";
    let site = find_image(yaml, "api").unwrap().unwrap();
    assert_eq!(&yaml[site.span], "x/api:v1");
}

#[test]
fn a_block_scalar_image_is_refused_with_its_line() {
    let yaml = "services:\n  api:\n    image: >\n      x/api:v1\n";
    let err = find_image(yaml, "api").unwrap_err();
    assert!(
        err.starts_with("line ") && err.contains("one line"),
        "{err}"
    );
}

#[test]
fn a_tag_or_a_reference_is_told_apart() {
    assert_eq!(
        Target::parse("sha-abc").unwrap(),
        Target::Tag("sha-abc".into())
    );
    assert!(
        matches!(Target::parse("ghcr.io/a/b:v2").unwrap(), Target::Image(i) if i.tag.as_deref() == Some("v2"))
    );
    assert!(Target::parse("latest").unwrap_err().contains("immutable"));
    assert!(Target::parse("ghcr.io/a/b").unwrap_err().contains("no tag"));
    assert!(Target::parse("bad tag").is_err());
    let old = ImageRef::parse("r.io/a:v1@sha256:0123456789abcdef0123456789abcdef").unwrap();
    assert_eq!(
        Target::Tag("v2".into()).applied_to(&old).unwrap().full,
        "r.io/a:v2"
    );
}

#[test]
fn interpolated_images_are_classified_or_refused() {
    assert_eq!(classify("r/a:v1").unwrap(), Written::Literal);
    assert_eq!(
        classify("${API_IMAGE}").unwrap(),
        Written::WholeVar("API_IMAGE".into())
    );
    assert_eq!(
        classify("$API_IMAGE").unwrap(),
        Written::WholeVar("API_IMAGE".into())
    );
    assert_eq!(
        classify("r/a:${TAG}").unwrap(),
        Written::TagVar("TAG".into())
    );
    assert_eq!(
        classify("r/a:${TAG:-v0}").unwrap(),
        Written::TagVar("TAG".into())
    );
    assert_eq!(
        classify("${REG:-r.io}/a:${TAG}").unwrap(),
        Written::TagVar("TAG".into())
    );
    for refused in [
        "r/a:v${N}",
        "${A}${B}",
        "r/a:${TAG:+x}",
        "${REG:-r.io:5000}/a",
    ] {
        let err = classify(refused).unwrap_err();
        assert!(err.contains("edit this one by hand"), "{refused}: {err}");
    }
}

#[test]
fn dotenv_lines_keep_export_quotes_and_comments() {
    let env = "# release\nexport API_TAG=\"v1\" # set by CI\nOTHER=1\nAPI_TAG = v0\n";
    let (out, line) = set_dotenv(env, "API_TAG", "v2");
    // The last setting wins, as the reader reads it; the other lines stay.
    assert_eq!(line, Some(4));
    assert_eq!(
        out,
        "# release\nexport API_TAG=\"v1\" # set by CI\nOTHER=1\nAPI_TAG = v2\n"
    );
    let (out, _) = set_dotenv("export API_TAG='v1' # c\n", "API_TAG", "v2");
    assert_eq!(out, "export API_TAG='v2' # c\n");
    let (out, line) = set_dotenv("OTHER=1", "API_TAG", "v2");
    assert_eq!((out.as_str(), line), ("OTHER=1\nAPI_TAG=v2\n", None));
    // A longer name sharing the prefix is not the variable.
    let (out, _) = set_dotenv("API_TAG_OLD=v1\n", "API_TAG", "v2");
    assert_eq!(out, "API_TAG_OLD=v1\nAPI_TAG=v2\n");
}

#[test]
fn the_golden_file_changes_in_one_line_and_the_sharers_are_named() {
    let tree = MemTree::new().with("deploy/compose.yaml", GOLDEN);
    let change = prepare(
        &tree,
        &desired(&["deploy/compose.yaml"]),
        "api",
        &Target::Tag("sha-2222222".into()),
    )
    .unwrap()
    .unwrap();
    assert_eq!(text(&change.files, "deploy/compose.yaml"), GOLDEN_BUMPED);
    assert_eq!(change.companions(), ["worker"]);
    assert_eq!(change.written_at, "deploy/compose.yaml:5");
    let msg = change.message("bump");
    assert!(
        msg.starts_with("bump api, worker: sha-1111111 → sha-2222222\n\n"),
        "{msg}"
    );
    // Already there: nothing to do.
    let tree = MemTree::new().with("deploy/compose.yaml", GOLDEN_BUMPED);
    assert!(prepare(
        &tree,
        &desired(&["deploy/compose.yaml"]),
        "api",
        &Target::Tag("sha-2222222".into())
    )
    .unwrap()
    .is_none());
}

#[test]
fn a_tag_variable_is_set_in_the_committed_env_beside_the_compose_file() {
    let compose = "name: shop\nservices:\n  api:\n    image: r.io/shop/api:${API_TAG}\n  worker:\n    image: r.io/shop/api:${API_TAG}\n  web:\n    image: r.io/shop/web:v1\n";
    let tree = MemTree::new()
        .with("stack/compose.yaml", compose)
        .with("stack/.env", "# tags\nAPI_TAG=v1\n");
    let d = desired(&["stack/compose.yaml"]);
    let change = prepare(&tree, &d, "api", &Target::Tag("v2".into()))
        .unwrap()
        .unwrap();
    assert_eq!(change.files.keys().collect::<Vec<_>>(), ["stack/.env"]);
    assert_eq!(text(&change.files, "stack/.env"), "# tags\nAPI_TAG=v2\n");
    assert_eq!(change.companions(), ["worker"]);
    // A whole reference with another repository cannot be written into a tag variable.
    let err = prepare(&tree, &d, "api", &Target::parse("r.io/other:v2").unwrap()).unwrap_err();
    assert!(err.contains("pass the tag alone"), "{err}");
}

#[test]
fn the_later_compose_file_is_edited_when_it_overrides_the_image() {
    let base = "name: shop\nservices:\n  api:\n    image: r.io/api:v1\n";
    let prod = "services:\n  api:\n    image: r.io/api:v5 # prod\n";
    let tree = MemTree::new()
        .with("compose.yaml", base)
        .with("compose.prod.yaml", prod);
    let d = desired(&["compose.yaml", "compose.prod.yaml"]);
    let change = prepare(&tree, &d, "api", &Target::Tag("v6".into()))
        .unwrap()
        .unwrap();
    assert_eq!(
        text(&change.files, "compose.prod.yaml"),
        "services:\n  api:\n    image: r.io/api:v6 # prod\n"
    );
    assert_eq!(change.old_image().full, "r.io/api:v5");
}

#[test]
fn in_a_compose_directory_only_the_file_the_loader_reads_is_edited() {
    let other = "services:\n  api:\n    image: r.io/api:v0\n";
    let tree = MemTree::new()
        .with(
            "shop/compose.yaml",
            "name: shop\nservices:\n  api:\n    image: r.io/api:v1\n",
        )
        .with("shop/compose.override.yaml", other)
        .with("shop/zz-notes.yaml", other);
    let change = prepare(&tree, &desired(&["shop"]), "api", &Target::Tag("v2".into()))
        .unwrap()
        .unwrap();
    assert_eq!(
        change.files.keys().collect::<Vec<_>>(),
        ["shop/compose.yaml"]
    );
}

#[test]
fn format_v1_files_of_a_directory_are_edited_too() {
    let tree = MemTree::new().with(
        "shop/berth.yaml",
        "project: shop\nservices:\n  api:\n    image: r.io/api:v1  # api\n",
    );
    let change = prepare(&tree, &desired(&["shop"]), "api", &Target::Tag("v2".into()))
        .unwrap()
        .unwrap();
    assert_eq!(
        text(&change.files, "shop/berth.yaml"),
        "project: shop\nservices:\n  api:\n    image: r.io/api:v2  # api\n"
    );
}

#[test]
fn an_invalid_result_or_an_unknown_service_is_refused_with_what_to_do() {
    let tree = MemTree::new().with("compose.yaml", GOLDEN);
    let d = desired(&["compose.yaml"]);
    let err = prepare(&tree, &d, "apx", &Target::Tag("v2".into())).unwrap_err();
    assert!(
        err.contains("no service `apx`") && err.contains("api, cache"),
        "{err}"
    );
    // The variable is read elsewhere too, where the new value is not valid: refused.
    let compose =
        "name: shop\nservices:\n  api:\n    image: r.io/api:${TAG}\n    ports: [\"${TAG}:80\"]\n";
    let tree = MemTree::new()
        .with("compose.yaml", compose)
        .with(".env", "TAG=8080\n");
    let err = prepare(&tree, &d, "api", &Target::Tag("v2".into())).unwrap_err();
    assert!(
        err.contains("after the bump, which was not written"),
        "{err}"
    );
}

#[test]
fn challenges_are_read_with_quoted_commas() {
    let c = parse_challenge(
        r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
    )
    .unwrap();
    assert_eq!(
        c,
        Challenge::Bearer {
            realm: "https://auth.example.com/token".into(),
            service: Some("registry.example.com".into()),
            scope: Some("repository:a/b:pull,push".into()),
        }
    );
    assert_eq!(parse_challenge("Basic realm=\"x\""), Some(Challenge::Basic));
    assert_eq!(parse_challenge("Bearer service=x"), None);
    assert_eq!(parse_challenge("Negotiate"), None);
}

#[test]
fn manifest_urls_follow_docker_naming_and_loopback_is_http() {
    let hub = ManifestUrl::of(&ImageRef::parse("nginx:1.27").unwrap(), &[]);
    assert_eq!(
        (
            hub.host.as_str(),
            hub.scheme,
            hub.name.as_str(),
            hub.reference.as_str()
        ),
        ("registry-1.docker.io", "https", "library/nginx", "1.27")
    );
    let local = ManifestUrl::of(&ImageRef::parse("127.0.0.1:5000/a/b:v1").unwrap(), &[]);
    assert_eq!((local.scheme, local.name.as_str()), ("http", "a/b"));
    let lan = ManifestUrl::of(
        &ImageRef::parse("reg.lan:5000/a:v1").unwrap(),
        &["reg.lan:5000".into()],
    );
    assert_eq!(lan.scheme, "http");
    let ghcr = ManifestUrl::of(&ImageRef::parse("ghcr.io/a/b:v1").unwrap(), &[]);
    assert_eq!(ghcr.scheme, "https");
}

mod token;
