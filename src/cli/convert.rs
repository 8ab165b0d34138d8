//! `berth convert`: a format v1 desired state written as a compose file.

use std::path::Path;

use super::validate::{print_load_error, print_loaded};
use super::{exit, ConvertArgs};
use crate::model::compose::render::{self, Masking};
use crate::model::load::is_compose_path;
use crate::model::{
    load_path_with, load_tree_with, repo_dir, AllowedHostPath, LoadOptions, MemTree, MountSource,
    Spec,
};

/// Converts, checks that the result reads back to the same spec, and prints or writes
/// it: 0 written, 1 invalid input or not convertible, 2 unreadable or usage.
pub(super) fn run(args: &ConvertArgs) -> u8 {
    let path = args.path.as_path();
    match is_compose_path(path) {
        Ok(false) => {}
        Ok(true) => {
            eprintln!(
                "error: {} is already a compose file; `berth config {}` prints it resolved",
                path.display(),
                path.display()
            );
            return exit::USAGE;
        }
        Err(e) => {
            print_load_error(&e);
            return exit::USAGE;
        }
    }
    // Nothing is deployed here: host paths are written as they are, and checked by the
    // host that deploys the result.
    let opts = LoadOptions {
        allow_host_paths: vec![AllowedHostPath::writable("/")],
        check_on_host: false,
        host_env: None,
        project: None,
    };
    let loaded = match load_path_with(path, &opts) {
        Ok(l) => l,
        Err(e) => {
            print_load_error(&e);
            return exit::USAGE;
        }
    };
    let Some(spec) = &loaded.spec else {
        print_loaded(path, &loaded, super::Output::Human);
        return exit::FAILED;
    };
    let dir = match repo_dir(path) {
        Ok(d) => d,
        Err(e) => {
            print_load_error(&e);
            return exit::USAGE;
        }
    };
    if let Some(out) = &args.output {
        if let Err(e) = check_output(path, out, spec) {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    }
    let text = match convert(spec, &dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return exit::FAILED;
        }
    };
    match &args.output {
        None => print!("{text}"),
        Some(out) => {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
            if let Err(e) = written {
                eprintln!("error: {}: {e}", out.display());
                return exit::USAGE;
            }
            eprintln!(
                "wrote {}: project `{}`, {} service{}",
                out.display(),
                spec.project,
                spec.services.len(),
                if spec.services.len() == 1 { "" } else { "s" }
            );
        }
    }
    exit::OK
}

/// An output file must be new, and, when the spec mounts repository files, sit in the
/// input's directory, where its relative paths lead.
fn check_output(input: &Path, out: &Path, spec: &Spec) -> Result<(), String> {
    if out.exists() {
        return Err(format!(
            "{} exists; convert writes a new file and never replaces one",
            out.display()
        ));
    }
    let mounts_files = spec.services.values().any(|s| {
        s.volumes
            .iter()
            .any(|m| matches!(m.source, MountSource::RepoFile(_)))
    });
    if !mounts_files {
        return Ok(());
    }
    let input_dir = if input.is_dir() {
        input.to_path_buf()
    } else {
        parent(input)
    };
    let same = match (input_dir.canonicalize(), parent(out).canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "{} mounts repository files by paths relative to {}; write the compose file there",
            input.display(),
            input_dir.display()
        ))
    }
}

fn parent(p: &Path) -> std::path::PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    }
}

/// The compose file of `spec`, loaded from the repository directory `dir`, written
/// unmasked (the values come from the committed file itself) and checked: read back
/// by berth's compose reader it gives `spec` again.
pub(super) fn convert(spec: &Spec, dir: &str) -> Result<String, String> {
    if !spec.migrations.is_empty() {
        let names: Vec<&str> = spec.migrations.keys().map(String::as_str).collect();
        return Err(format!(
            "migrations ({}) have no compose form berth reads yet; keep format v1 for this project",
            names.join(", ")
        ));
    }
    let identity = |s: &str| s.to_string();
    let never = |_: &str| false;
    let masking = Masking {
        redact: &identity,
        secret_name: &never,
    };
    let text = serde_yaml::to_string(&render::project(spec, dir, &masking))
        .expect("plain data serializes");
    let file = if dir.is_empty() {
        "compose.yaml".to_string()
    } else {
        format!("{dir}/compose.yaml")
    };
    let mut tree = MemTree::new().with(&file, text.as_bytes());
    for s in spec.services.values() {
        for m in &s.volumes {
            if let MountSource::RepoFile(f) = &m.source {
                tree = tree.with(&f.path, f.content.to_vec());
            }
        }
    }
    let opts = LoadOptions {
        allow_host_paths: vec![AllowedHostPath::writable("/")],
        check_on_host: false,
        host_env: None,
        project: None,
    };
    let loaded = load_tree_with(&tree, &file, &opts).map_err(|e| e.to_string())?;
    let Some(back) = loaded.spec else {
        return Err(format!(
            "the compose form does not read back ({}); nothing written",
            loaded.diagnostics
        ));
    };
    let mut expected = spec.clone();
    for s in expected.services.values_mut() {
        s.depends_on.sort();
    }
    if back != expected {
        return Err("the compose form reads back to a different spec; nothing written".into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
