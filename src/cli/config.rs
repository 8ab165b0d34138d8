//! `berth config`: the resolved desired state as a compose file.

use super::validate::{print_load_error, print_loaded};
use super::{exit, ConfigArgs, Output};
use crate::executor::redact::looks_secret;
use crate::executor::Redactor;
use crate::model::compose::render::{self, Masking};
use crate::model::{load_paths_with, repo_dir, LoadOptions, Spec};

/// Loads as `validate` does (the host's `.env` read from the env directory) and prints
/// the compose project: YAML, or JSON with `--output json`. Exit 0 printed, 1 invalid,
/// 2 unreadable.
pub(super) fn run(args: &ConfigArgs) -> u8 {
    let opts = LoadOptions {
        allow_host_paths: args.allow_host_path.clone(),
        check_on_host: false,
        host_env: Some(crate::plan::env_file::host_env(args.env_dir.clone())),
        project: args.project.clone(),
    };
    let paths = super::paths(args.path.clone(), args.file.clone());
    let path = paths[0].as_path();
    let loaded = match load_paths_with(&paths, &opts) {
        Ok(l) => l,
        Err(e) => {
            print_load_error(&e);
            return exit::USAGE;
        }
    };
    let Some(spec) = &loaded.spec else {
        print_loaded(path, &loaded, args.output);
        return exit::FAILED;
    };
    for w in loaded.diagnostics.warnings() {
        eprintln!("{}", w.headline());
    }
    let dir = match repo_dir(path) {
        Ok(d) => d,
        Err(e) => {
            print_load_error(&e);
            return exit::USAGE;
        }
    };
    if !spec.migrations.is_empty() {
        eprintln!("note: migrations are shown under the top-level `x-berth`, which berth's compose reader does not read yet");
    }
    print!("{}", text(spec, &dir, args.output));
    exit::OK
}

/// The compose project of `spec` as YAML or pretty JSON, every secret masked: values
/// taken from the host's `.env`, and environment values whose names look secret.
pub(super) fn text(spec: &Spec, dir: &str, output: Output) -> String {
    let redactor = Redactor::new(spec.secrets.clone());
    let redact = |s: &str| redactor.redact(s);
    let masking = Masking {
        redact: &redact,
        secret_name: &looks_secret,
    };
    let project = render::project(spec, dir, &masking);
    match output {
        Output::Human => serde_yaml::to_string(&project).expect("plain data serializes"),
        Output::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&project).expect("plain data serializes")
        ),
    }
}

#[cfg(test)]
mod tests;
