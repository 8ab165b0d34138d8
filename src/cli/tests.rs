use super::*;
use clap::CommandFactory;
use std::time::Duration;

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn file_and_path_repeat_in_order_and_project_names_a_compose_project() {
    let cli = Cli::try_parse_from([
        "berth",
        "apply",
        "-f",
        "compose.yaml",
        "--file",
        "compose.prod.yml",
        "--project",
        "shop",
    ])
    .unwrap();
    let Command::Apply(args) = cli.command else {
        panic!("apply")
    };
    assert_eq!(
        args.source.file,
        [PathBuf::from("compose.yaml"), "compose.prod.yml".into()]
    );
    assert_eq!(args.project.as_deref(), Some("shop"));
    let cli = Cli::try_parse_from([
        "berth",
        "agent",
        "--repo",
        "/srv/repo",
        "--path",
        "shop",
        "--path",
        "shop/compose.prod.yml",
        "--project",
        "shop",
    ])
    .unwrap();
    let Command::Agent(args) = cli.command else {
        panic!("agent")
    };
    assert_eq!(args.source.path, ["shop", "shop/compose.prod.yml"]);
    let cli = Cli::try_parse_from(["berth", "validate", "-f", "a.yaml", "-f", "b.yaml"]).unwrap();
    let Command::Validate { path, file, .. } = cli.command else {
        panic!("validate")
    };
    assert_eq!(
        paths(path, file),
        [PathBuf::from("a.yaml"), "b.yaml".into()]
    );
    assert!(Cli::try_parse_from(["berth", "validate", "x", "-f", "a.yaml"]).is_err());
}

/// `--git-status` from the command line to the git host's API: the flags make a
/// reporter whose first status reaches a GitLab API on loopback, with this host's
/// context and the project path read from an scp-like remote.
#[tokio::test]
async fn git_status_flags_reach_the_api_they_name() {
    use crate::commit_status::tests::server::ApiHost;
    use crate::commit_status::Provider;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "glpat-cli-test\n").unwrap();
    let api = ApiHost::start(Provider::GitLab, "glpat-cli-test", "group/sub/shop", 0).await;
    let base = api.base();
    let cli = Cli::try_parse_from([
        "berth",
        "agent",
        "--repo",
        "git@gitlab.example:group/sub/shop.git",
        "--host",
        "web-1",
        "--git-status",
        "auto",
        "--git-status-token-file",
        &token.display().to_string(),
        "--git-status-url",
        &base,
    ])
    .unwrap();
    let Command::Agent(args) = cli.command else {
        panic!("agent")
    };
    let reporter = agent::git_status(&args).unwrap();
    let sha = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    reporter.starting(sha);
    assert!(reporter.flush(std::time::Duration::from_secs(20)).await);
    let seen = api.seen();
    assert_eq!(seen.len(), 1, "refused: {:?}", api.refused());
    assert_eq!(
        (seen[0].state.as_str(), seen[0].context.as_str()),
        ("pending", "berth/web-1")
    );
    // Without --git-status nothing is sent, and its companions alone are refused.
    let cli = Cli::try_parse_from(["berth", "agent", "--repo", "/srv/deploy"]).unwrap();
    let Command::Agent(args) = cli.command else {
        panic!("agent")
    };
    assert!(agent::git_status(&args).is_ok());
    let cli = Cli::try_parse_from([
        "berth",
        "agent",
        "--repo",
        "/srv/deploy",
        "--git-status-url",
        "https://gitlab.example",
    ])
    .unwrap();
    let Command::Agent(args) = cli.command else {
        panic!("agent")
    };
    let e = agent::git_status(&args).unwrap_err();
    assert!(e.contains("need --git-status"), "{e}");
}

#[test]
fn a_lease_ttl_is_30s_by_default_and_shorter_than_3s_is_refused_with_the_reason() {
    let agent = |extra: &[&str]| {
        let mut argv = vec!["berth", "agent", "--repo", "/srv/repo"];
        argv.extend(extra);
        Cli::try_parse_from(argv)
    };
    let Command::Agent(args) = agent(&[]).unwrap().command else {
        panic!("agent")
    };
    assert_eq!(args.lease_ttl, Duration::from_secs(30));
    let Command::Agent(args) = agent(&["--lease-ttl", "3s"]).unwrap().command else {
        panic!("agent")
    };
    assert_eq!(args.lease_ttl, Duration::from_secs(3));
    let err = agent(&["--lease-ttl", "2500ms"])
        .expect_err("refused")
        .to_string();
    assert!(err.contains("--lease-ttl"), "{err}");
    assert!(err.contains("give at least 3s"), "{err}");
}
