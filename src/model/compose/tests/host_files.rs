//! What a compose file takes from outside itself: relative binds that are the
//! project's host data, secrets from the host's env directory and configs from the
//! repository.

use super::*;

#[test]
fn a_relative_bind_not_in_the_repository_is_host_data_below_the_compose_file() {
    let yaml = "name: shop
services:
  db:
    image: reg.example/db:1
    volumes:
      - ./data/pg:/var/lib/postgresql/data
      - ./conf:/etc/db:ro
      - type: bind
        source: ./uploads
        target: /srv/uploads
";
    let loaded = load_files(
        &[("stack/compose.yaml", yaml), ("stack/conf/db.conf", "x\n")],
        "stack",
    );
    let s = loaded.spec.expect("valid");
    let sources: Vec<&MountSource> = s.services["db"].volumes.iter().map(|m| &m.source).collect();
    assert_eq!(sources[0], &MountSource::HostData("data/pg".into()));
    assert!(matches!(sources[1], MountSource::RepoDir(d) if d.path == "stack/conf"));
    assert_eq!(sources[2], &MountSource::HostData("uploads".into()));

    let loaded = load_files(
        &[(
            "stack/compose.yaml",
            "name: shop\nservices:\n  db:\n    image: reg.example/db:1\n    volumes: [\"../data:/data\"]\n",
        )],
        "stack",
    );
    assert!(loaded.spec.is_none());
    assert!(
        loaded.diagnostics.to_string().contains("stack/compose.yaml:5:15: error: services.db.volumes[0]: `../data` is not in the repository, so it would be host data, which must lie below the compose file's directory"),
        "{}",
        loaded.diagnostics
    );
}

#[test]
fn secrets_come_from_the_env_directory_and_configs_from_the_repository() {
    let yaml = "name: shop
secrets:
  db_password: { file: ./db_password.txt }
  api_key: { file: /etc/berth/shop/api_key }
configs:
  app_ini: { file: ./conf/app.ini }
services:
  api:
    image: reg.example/api:1
    secrets:
      - db_password
      - source: api_key
        target: key
    configs:
      - app_ini
      - source: app_ini
        target: /etc/app/app.ini
";
    let loaded = load_files(
        &[
            ("stack/compose.yaml", yaml),
            ("stack/conf/app.ini", "[app]\n"),
        ],
        "stack",
    );
    let s = loaded
        .spec
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics));
    let mounts: Vec<(String, &str, bool)> = s.services["api"]
        .volumes
        .iter()
        .map(|m| {
            let source = match &m.source {
                MountSource::Secret { name, path, .. } => {
                    format!("secret {name} {}", path.display())
                }
                MountSource::RepoFile(f) => format!("file {}", f.path),
                other => format!("{other:?}"),
            };
            (source, m.target.as_str(), m.read_only)
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("file stack/conf/app.ini".to_string(), "/app_ini", true),
            (
                "file stack/conf/app.ini".to_string(),
                "/etc/app/app.ini",
                true
            ),
            (
                "secret db_password db_password.txt".to_string(),
                "/run/secrets/db_password",
                true
            ),
            (
                "secret api_key /etc/berth/shop/api_key".to_string(),
                "/run/secrets/key",
                true
            ),
        ]
    );

    let cases = [
        ("secrets:\n  s: { environment: TOKEN }\n", "3:8: error: secrets.s.environment: `environment` is not supported: it reads the variable from the environment of whoever runs berth, which berth never does; put the value in a file in the host's env directory and use `file:`"),
        ("secrets:\n  s: { external: true }\n", "3:8: error: secrets.s.external: `external` is not supported: external secrets and configs belong to Swarm; use `file:`"),
        ("secrets:\n  s: { file: ../../root/.ssh/id_rsa }\n", "3:14: error: secrets.s.file: secret file `../../root/.ssh/id_rsa` leads out of the env directory; secrets are read from the host's env directory (`/etc/berth/<project>/`, or --env-dir): name a file there"),
        ("configs:\n  c: { file: ../../etc/passwd }\n", "3:14: error: configs.c.file: `../../etc/passwd` leads outside the repository; configs are repository files"),
        ("configs:\n  c: { file: ./missing.ini }\n", "3:14: error: configs.c.file: `./missing.ini` does not exist in the repository (looked for `stack/missing.ini`); commit it or fix the path"),
    ];
    for (top, want) in cases {
        let yaml = format!("name: shop\n{top}services:\n  api:\n    image: reg.example/api:1\n");
        let loaded = load_files(&[("stack/compose.yaml", &yaml)], "stack");
        assert!(loaded.spec.is_none(), "{top}");
        let text = loaded.diagnostics.to_string();
        assert!(
            text.contains(&format!("stack/compose.yaml:{want}")),
            "{text}\n  wanted {want}"
        );
    }
    let yaml = "name: shop\nservices:\n  api:\n    image: reg.example/api:1\n    secrets: [db_pasword]\nsecrets:\n  db_password: { file: db_password.txt }\n";
    let loaded = load_files(&[("stack/compose.yaml", yaml)], "stack");
    assert!(
        loaded.diagnostics.to_string().contains("stack/compose.yaml:5:15: error: services.api.secrets[0]: secret `db_pasword` is not declared; did you mean `db_password`?"),
        "{}",
        loaded.diagnostics
    );
}
