use super::*;
use clap::CommandFactory;

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
