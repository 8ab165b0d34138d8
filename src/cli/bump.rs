//! `berth bump`: a release as a commit (see [`crate::bump`]).

use super::{exit, BumpArgs, ReleaseArgs};
use crate::bump::git::Checkout;
use crate::bump::{prepare, registry, release, Change, Desired, Target};
use crate::model::{FsTree, LoadOptions};

/// Runs the command; the exit status says committed (0), refused (1) or usage (2).
pub(super) fn run(args: &BumpArgs) -> u8 {
    let target = match Target::parse(&args.image) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", args.image);
            return exit::USAGE;
        }
    };
    match bump(args, &target) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

/// The checkout holding the desired state, and the desired state's paths in it.
pub(super) fn open(release: &ReleaseArgs) -> Result<(Checkout, Desired), String> {
    let first = release
        .file
        .first()
        .map(|p| p.as_path())
        .unwrap_or(".".as_ref());
    let start = if first.is_dir() {
        first
    } else {
        first
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(".".as_ref())
    };
    let checkout = Checkout::discover(start)?;
    let configs = release
        .file
        .iter()
        .map(|f| checkout.relative(f))
        .collect::<Result<Vec<_>, _>>()?;
    let desired = Desired {
        configs,
        options: LoadOptions {
            allow_host_paths: release.allow_host_path.clone(),
            check_on_host: false,
            host_env: None,
            project: release.project.clone(),
        },
    };
    Ok((checkout, desired))
}

/// The work tree as the loader reads it.
pub(super) fn work_tree(checkout: &Checkout) -> Result<FsTree, String> {
    FsTree::new(&checkout.root, "", &checkout.root).map_err(|e| e.to_string())
}

/// Writes `change` into the checkout and commits it with `message`.
pub(super) fn commit_change(
    checkout: &Checkout,
    change: &Change,
    message: &str,
    sign: bool,
) -> Result<git2::Oid, String> {
    let paths: Vec<&str> = change.files.keys().map(String::as_str).collect();
    checkout.require_clean(&paths)?;
    checkout.write(&change.files)?;
    checkout.commit(message, sign)
}

/// Prints what moves.
pub(super) fn describe(change: &Change) {
    println!(
        "{}: {} → {} ({})",
        change.service,
        change.old_image().full,
        change.new_image().full,
        change.written_at
    );
    let companions = change.companions();
    if !companions.is_empty() {
        println!(
            "moves together with {} (same image line or variable): {}",
            change.service,
            companions.join(", ")
        );
    }
}

fn bump(args: &BumpArgs, target: &Target) -> Result<(), String> {
    let (checkout, desired) = open(&args.release)?;
    let service = args.service.as_str();
    let Some(change) = prepare(&work_tree(&checkout)?, &desired, service, target)? else {
        println!("{service} already runs {}; nothing to commit", args.image);
        return Ok(());
    };
    describe(&change);
    if args.check_image {
        let image = change.new_image().clone();
        let found = super::runtime().block_on(async {
            let auth = crate::executor::auth::registry_auth(&image.full)
                .await
                .map_err(|e| e.to_string())?;
            registry::exists(&image, &args.insecure_registry, auth.as_ref()).await
        })?;
        if !found {
            return Err(format!(
                "{} has no `{}`: push the image first (nothing was written)",
                registry::ManifestUrl::of(&image, &args.insecure_registry).host,
                image.full
            ));
        }
        println!("{} exists in its registry", image.full);
    }
    let sign = checkout.signs(args.release.sign);
    let released = release(&checkout, args.release.push, |co| {
        let Some(change) = prepare(&work_tree(co)?, &desired, service, target)? else {
            return Ok(None);
        };
        let mut message = change.message("bump");
        if let Some(extra) = &args.message {
            message = message.replacen("\n\n", &format!("\n\n{}\n\n", extra.trim()), 1);
        }
        commit_change(co, &change, &message, sign).map(Some)
    })?;
    report(&released, args.release.push);
    Ok(())
}

/// Prints the commit and the push.
pub(super) fn report(released: &crate::bump::Released, push: bool) {
    match released.commit {
        Some(c) => println!("committed {}", crate::bump::rollback::short(c)),
        None => println!("nothing to commit: the upstream already has it"),
    }
    if released.pushed {
        match released.rejected {
            0 => println!("pushed"),
            n => println!("pushed (replayed on the remote's new tip after {n} rejected push(es))"),
        }
    } else if push && released.commit.is_some() {
        println!("not pushed");
    }
}
