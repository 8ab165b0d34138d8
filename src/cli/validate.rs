//! `berth validate`.

use std::path::{Path, PathBuf};

use super::{exit, Output};
use crate::model::{load_paths_with, AllowedHostPath, LoadError, LoadOptions, Loaded};

/// Loads and prints the outcome; the exit status says valid (0), invalid (1) or
/// unreadable (2).
pub(super) fn run(
    paths: &[PathBuf],
    allow_host_paths: &[AllowedHostPath],
    project: Option<&str>,
    output: Output,
) -> u8 {
    // By spelling only: the files are checked for the hosts they will run on, not for
    // this machine.
    let opts = LoadOptions {
        allow_host_paths: allow_host_paths.to_vec(),
        check_on_host: false,
        host_env: None,
        project: project.map(str::to_string),
    };
    match load_paths_with(paths, &opts) {
        Ok(loaded) => {
            print_loaded(&paths[0], &loaded, output);
            if loaded.spec.is_some() {
                exit::OK
            } else {
                exit::FAILED
            }
        }
        Err(e) => {
            print_load_error(&e);
            exit::USAGE
        }
    }
}

pub(crate) fn print_load_error(e: &LoadError) {
    eprintln!("error: {e}");
}

/// Prints diagnostics and a summary line.
pub(crate) fn print_loaded(path: &Path, loaded: &Loaded, output: Output) {
    match output {
        Output::Json => {
            let doc = serde_json::json!({
                "path": path.display().to_string(),
                "valid": loaded.spec.is_some(),
                "diagnostics": loaded.diagnostics,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("serializes")
            );
        }
        Output::Human => {
            print!("{}", loaded.diagnostics);
            let summary = loaded.diagnostics.summary();
            match &loaded.spec {
                Some(spec) => println!(
                    "{}: valid: project {}, {} service{}, {} migration{} ({summary})",
                    path.display(),
                    spec.project,
                    spec.services.len(),
                    plural(spec.services.len()),
                    spec.migrations.len(),
                    plural(spec.migrations.len()),
                ),
                None => println!("{}: invalid ({summary})", path.display()),
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
