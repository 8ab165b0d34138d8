//! Loading the desired state from `--file` or `--repo`, the same way for every command.

use std::path::Path;

use super::validate::{print_load_error, print_loaded};
use super::{exit, HostArgs, Output, SourceArgs};
use crate::model::{load_paths_with, LoadOptions, Spec};
use crate::source::signature::AllowedSigners;
use crate::source::ssh::SshIdentity;
use crate::source::{CommitInfo, GitAuth, GitSource};

/// The host's options from the flags: a compose project's host `.env` is read from
/// its env directory (`--env-dir`).
/// `project` names a compose project whose files have no top-level `name:`.
pub(super) fn load_options(
    args: &SourceArgs,
    host: &HostArgs,
    project: Option<&str>,
) -> LoadOptions {
    LoadOptions {
        allow_host_paths: args.allow_host_path.clone(),
        check_on_host: true,
        host_env: Some(crate::plan::env_file::host_env(host.env_dir.clone())),
        project: project.map(str::to_string),
    }
}

/// Git credentials from the flags, `BERTH_GIT_TOKEN` and `SSH_AUTH_SOCK` (used only
/// without `--git-ssh-key`).
pub(super) fn git_auth(args: &SourceArgs) -> Result<GitAuth, String> {
    let token = match &args.git_token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("--git-token-file {}: {e}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("BERTH_GIT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    Ok(GitAuth {
        token,
        ssh: SshIdentity::choose(
            args.git_ssh_key.as_deref(),
            args.git_ssh_passphrase_file.as_deref(),
            std::env::var("SSH_AUTH_SOCK").ok().as_deref(),
        )?,
        known_hosts: args.git_known_hosts.clone(),
    })
}

/// The git source from the flags, when `--repo` is given.
pub(super) fn git_source(args: &SourceArgs, state_dir: &Path) -> Result<Option<GitSource>, String> {
    let Some(repo) = &args.repo else {
        return Ok(None);
    };
    let (first, more) = match args.path.split_first() {
        Some((first, more)) => (first.as_str(), more),
        None => ("", &[][..]),
    };
    Ok(Some(
        GitSource::new(repo, &args.branch, first, state_dir, git_auth(args)?).with_more_paths(more),
    ))
}

/// The allowed signers from the flags.
pub(super) fn allowed_signers(args: &SourceArgs) -> Result<Option<AllowedSigners>, String> {
    args.verify_signatures
        .as_deref()
        .map(AllowedSigners::load)
        .transpose()
}

/// Loads and validates; on failure prints why and returns the exit status
/// (`invalid` for invalid input, 2 for unreadable input).
pub(super) fn load(
    args: &SourceArgs,
    host: &HostArgs,
    state_dir: &Path,
    invalid: u8,
    project: Option<&str>,
) -> Result<(Spec, Option<CommitInfo>), u8> {
    let opts = load_options(args, host, project);
    if let Some(file) = args.file.first() {
        let loaded = load_paths_with(&args.file, &opts).map_err(|e| {
            print_load_error(&e);
            exit::USAGE
        })?;
        for w in loaded.diagnostics.warnings() {
            eprintln!("{}", w.headline());
        }
        return match loaded.spec.clone() {
            Some(spec) => Ok((spec, None)),
            None => {
                print_loaded(file, &loaded, Output::Human);
                Err(invalid)
            }
        };
    }
    let fail = |e: String| {
        eprintln!("error: {e}");
        exit::USAGE
    };
    let Some(source) = git_source(args, state_dir).map_err(fail)? else {
        return Err(fail(
            "give the desired state with --file PATH or --repo URL_OR_PATH".into(),
        ));
    };
    let signers = allowed_signers(args).map_err(fail)?;
    let oid = source.fetch().map_err(|e| fail(e.to_string()))?;
    let info = source.commit_info(oid).map_err(|e| fail(e.to_string()))?;
    if let Some(allowed) = &signers {
        let check = source
            .verify(oid, allowed)
            .map_err(|e| fail(e.to_string()))?;
        if !check.is_valid() {
            eprintln!("error: commit {} refused: {check}; only commits signed by an allowed key are applied", info.short());
            return Err(invalid);
        }
    }
    let loaded = source.load(oid, &opts).map_err(|e| fail(e.to_string()))?;
    for w in loaded.diagnostics.warnings() {
        eprintln!("{}", w.headline());
    }
    match loaded.spec.clone() {
        Some(spec) => Ok((spec, Some(info))),
        None => {
            eprint!("{}", loaded.diagnostics);
            eprintln!(
                "commit {}: invalid ({})",
                info.short(),
                loaded.diagnostics.summary()
            );
            Err(invalid)
        }
    }
}
