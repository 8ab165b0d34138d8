//! `berth rollback`: undo the last change of a service's image, as a commit.

use super::bump::{commit_change, describe, open, report, work_tree};
use super::{exit, RollbackArgs};
use crate::bump::rollback::{clean_revert, last_change, short};
use crate::bump::{prepare, release, Target};

/// Runs the command; the exit status says committed (0) or refused (1).
pub(super) fn run(args: &RollbackArgs) -> u8 {
    match rollback(args) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

fn rollback(args: &RollbackArgs) -> Result<(), String> {
    let (checkout, desired) = open(&args.release)?;
    let service = args.service.as_str();
    let change = last_change(&checkout, &desired, service)?;
    println!(
        "last change of {service}: commit {} by {} at {}\n  {}\n  {} → {}",
        short(change.commit),
        change.author,
        change.date,
        change.summary,
        change.old.full,
        change.new.full
    );
    let revert = clean_revert(&checkout, &desired, &change)?;
    println!(
        "rollback: {service} {} → {} by {}",
        change.new.full,
        change.old.full,
        match revert {
            Some(_) => format!("reverting commit {}", short(change.commit)),
            None => "writing the previous image (the commit does not revert cleanly alone)".into(),
        }
    );
    if args.dry_run {
        println!("dry run: nothing committed");
        return Ok(());
    }
    let sign = checkout.signs(args.release.sign);
    let released = release(&checkout, args.release.push, |co| {
        if let Some(files) = clean_revert(co, &desired, &change)? {
            let paths: Vec<&str> = files.keys().map(String::as_str).collect();
            co.require_clean(&paths)?;
            co.write(&files)?;
            let message = format!(
                "rollback {service}: {} → {}\n\nThis reverts commit {} ({}).\n",
                tag(&change.new),
                tag(&change.old),
                change.commit,
                change.summary
            );
            return co.commit(&message, sign).map(Some);
        }
        let target = Target::Image(change.old.clone());
        let Some(bump) = prepare(&work_tree(co)?, &desired, service, &target)? else {
            return Ok(None);
        };
        describe(&bump);
        let message = format!(
            "{}\nThe image before commit {} ({}), which does not revert cleanly alone.\n",
            bump.message("rollback"),
            change.commit,
            change.summary
        );
        commit_change(co, &bump, &message, sign).map(Some)
    })?;
    report(&released, args.release.push);
    Ok(())
}

/// The tag (or digest) of an image, for a subject line.
fn tag(image: &crate::model::ImageRef) -> String {
    match (&image.tag, &image.digest) {
        (_, Some(d)) => format!("@{d}"),
        (Some(t), None) => t.clone(),
        (None, None) => image.full.clone(),
    }
}
