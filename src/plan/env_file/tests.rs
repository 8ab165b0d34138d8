use super::*;

fn kv(text: &str) -> Vec<(String, String)> {
    parse(text.as_bytes()).unwrap()
}

fn file(path: &str, required: bool) -> crate::model::EnvFileRef {
    crate::model::EnvFileRef {
        path: path.into(),
        required,
        sealed: None,
    }
}

#[test]
fn several_files_merge_in_order_and_optional_missing_ones_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env.prod"), "A=1\nB=2\n").unwrap();
    std::fs::write(dir.path().join("api.env"), "B=3\nC=4\n").unwrap();
    let abs = dir.path().join("api.env").display().to_string();
    let got = read_all(
        &[
            file(".env.prod", true),
            file("missing.env", false),
            file(&abs, true),
        ],
        dir.path(),
    );
    let crate::plan::EnvFile::Loaded(kvs) = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        kvs,
        [("A", "1"), ("B", "3"), ("C", "4")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    // A required file that is missing is an error naming it, not an empty set.
    let crate::plan::EnvFile::Unreadable(why) = read_all(&[file("gone.env", true)], dir.path())
    else {
        panic!()
    };
    assert!(why.contains("gone.env"), "{why}");
}

#[test]
fn an_optional_file_outside_the_env_dir_is_refused_not_probed() {
    let dir = tempfile::tempdir().unwrap();
    for path in ["/etc/passwd", "/nonexistent/x.env"] {
        let crate::plan::EnvFile::Unreadable(why) = read_all(&[file(path, false)], dir.path())
        else {
            panic!("{path}")
        };
        assert!(why.contains("is not inside the env directory"), "{why}");
    }
}

#[test]
fn values_are_literal() {
    assert_eq!(
        kv("A=pa$word\nB=${HOME}\nC=\"quoted\"\nD='single'\nE= spaced \nF=x=y\n"),
        [
            ("A", "pa$word"),
            ("B", "${HOME}"),
            ("C", "\"quoted\""),
            ("D", "'single'"),
            ("E", " spaced "),
            ("F", "x=y"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

#[test]
fn comments_blank_lines_crlf_and_bom() {
    assert_eq!(
        kv("\u{feff}# comment\r\n\r\n   \n  # indented\nA=1\r\n  B=2\n"),
        [("A", "1"), ("B", "2")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

#[test]
fn a_name_alone_is_refused_not_taken_from_the_environment() {
    let e = parse(b"A=1\nPGPASSWORD\n").unwrap_err();
    assert_eq!(
        e,
        "line 2 has no `=`; write KEY=VALUE (berth never fills a value in from its own environment)"
    );
}

#[test]
fn bad_names_and_bytes_are_refused_without_the_value() {
    assert_eq!(
        parse(b"MY KEY=secret\n").unwrap_err(),
        "line 1: the name before `=` must be one word without spaces"
    );
    assert_eq!(
        parse(b"=secret\n").unwrap_err(),
        "line 1: the name before `=` must be one word without spaces"
    );
    assert_eq!(
        parse(b"A=1\nB=\xff\xfe\n").unwrap_err(),
        "line 2 is not valid UTF-8"
    );
}

#[test]
fn the_env_dir_takes_the_project() {
    assert_eq!(env_dir(None, "shop"), Path::new("/etc/berth/shop"));
    assert_eq!(
        env_dir(Some(Path::new("/srv/env/<project>")), "shop"),
        Path::new("/srv/env/shop")
    );
    assert_eq!(
        env_dir(Some(Path::new("/srv/env")), "shop"),
        Path::new("/srv/env")
    );
}

#[test]
fn only_regular_files_inside_the_dir_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("env");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(inside.join("api.env"), "A=pa$word\n").unwrap();
    std::fs::write(dir.path().join("secret.env"), "S=1\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.env"), inside.join("link.env")).unwrap();
    let fifo = inside.join("fifo.env");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

    assert_eq!(
        read(&inside.join("api.env"), &inside).unwrap()[0].1,
        "pa$word"
    );
    let outside = |p: &Path| {
        format!(
            "env_file {} is not inside the env directory {}; env files are read only from there (--env-dir)",
            p.display(),
            inside.display()
        )
    };
    // The same answer whether or not an outside path exists.
    for p in [
        dir.path().join("secret.env"),
        dir.path().join("absent.env"),
        inside.join("../secret.env"),
        inside.join("link.env"),
    ] {
        assert_eq!(read(&p, &inside).unwrap_err(), outside(&p));
    }
    assert_eq!(
        read(&fifo, &inside).unwrap_err(),
        format!("env_file {} is not a regular file", fifo.display())
    );
    assert_eq!(
        read(Path::new("/dev/zero"), Path::new("/dev")).unwrap_err(),
        "env_file /dev/zero is not a regular file"
    );
}

#[test]
fn the_host_dotenv_is_read_from_the_project_env_dir_under_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("<project>");
    assert_eq!(read_host_dotenv(Some(&template), "shop").unwrap(), None);
    let shop = dir.path().join("shop");
    std::fs::create_dir(&shop).unwrap();
    assert_eq!(read_host_dotenv(Some(&template), "shop").unwrap(), None);
    std::fs::write(shop.join(".env"), "DB_PASS=pa$word\n").unwrap();
    let read = host_env(Some(template.clone()))
        .read("shop")
        .unwrap()
        .unwrap();
    assert_eq!(read.text, "DB_PASS=pa$word\n");
    assert_eq!(read.path, shop.join(".env").display().to_string());

    std::fs::write(dir.path().join("outside"), "S=1\n").unwrap();
    std::fs::create_dir(dir.path().join("web")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside"), dir.path().join("web/.env")).unwrap();
    let e = read_host_dotenv(Some(&template), "web").unwrap_err();
    assert!(e.contains("is not inside the env directory"), "{e}");
}
