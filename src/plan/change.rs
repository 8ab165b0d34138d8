//! What changed between a running replica's spec parts and the desired ones, said in
//! words an operator can act on, never with a value.

use super::SpecParts;

/// Says which parts differ, in words an operator can act on; never shows a value.
pub fn describe_change(old: &SpecParts, new: &SpecParts) -> Vec<String> {
    let mut out = Vec::new();
    if old.image != new.image {
        out.push(image_change(&old.image, &new.image));
    }
    if old.command != new.command {
        out.push("command changed".into());
    }
    for (k, v) in &new.env {
        match old.env.get(k) {
            None => out.push(format!("env {k} added")),
            Some(o) if o != v => out.push(format!("env {k} changed")),
            _ => {}
        }
    }
    for k in old.env.keys().filter(|k| !new.env.contains_key(*k)) {
        out.push(format!("env {k} removed"));
    }
    match (&old.env_file, &new.env_file) {
        (None, Some(_)) => out.push("env_file added".into()),
        (Some(_), None) => out.push("env_file removed".into()),
        // Named per file when both sides know each file's digest (a container made
        // before they were recorded does not).
        (Some(a), Some(b)) if a != b && !old.env_files.is_empty() && !new.env_files.is_empty() => {
            let before = out.len();
            for (path, h) in &new.env_files {
                match old.env_files.get(path) {
                    Some(o) if o == h => {}
                    Some(_) => out.push(format!("env_file {path} changed")),
                    None => out.push(format!("env_file {path} added")),
                }
            }
            for path in old
                .env_files
                .keys()
                .filter(|p| !new.env_files.contains_key(*p))
            {
                out.push(format!("env_file {path} removed"));
            }
            if out.len() == before {
                out.push("env_file content changed".into());
            }
        }
        (Some(a), Some(b)) if a != b => out.push("env_file content changed".into()),
        _ => {}
    }
    // A secret is kept as `secret:<name>`, or `secret:<repository path>` when encrypted.
    let shown = |key: &str| match key.strip_prefix("secret:") {
        Some(rest) => format!("secret {rest}"),
        None => format!("file {key}"),
    };
    for (path, h) in &new.files {
        match old.files.get(path) {
            Some(o) if o == h => {}
            Some(_) => out.push(format!("{} changed", shown(path))),
            None => out.push(format!("{} mounted", shown(path))),
        }
    }
    for path in old.files.keys().filter(|p| !new.files.contains_key(*p)) {
        out.push(format!("{} no longer mounted", shown(path)));
    }
    if old.wiring != new.wiring {
        out.push("networks, mounts or ports changed".into());
    }
    if old.health != new.health {
        out.push("health check changed".into());
    }
    if old.limits != new.limits {
        out.push("resources or stop_grace changed".into());
    }
    let keys: std::collections::BTreeSet<&String> =
        old.options.keys().chain(new.options.keys()).collect();
    for k in keys {
        if old.options.get(k) != new.options.get(k) {
            out.push(format!("{k} changed"));
        }
    }
    for (k, v) in &new.labels {
        match old.labels.get(k) {
            None => out.push(format!("label {k} added")),
            Some(o) if o != v => out.push(format!("label {k} changed")),
            _ => {}
        }
    }
    for k in old.labels.keys().filter(|k| !new.labels.contains_key(*k)) {
        out.push(format!("label {k} removed"));
    }
    out
}

/// "image sha-1111111 → sha-2222222", with the repositories only when they differ.
pub fn image_change(old: &str, new: &str) -> String {
    use crate::model::ImageRef;
    match (ImageRef::parse(old), ImageRef::parse(new)) {
        (Ok(a), Ok(b)) if a.repository == b.repository => {
            format!("image {} → {}", a.short(), b.short())
        }
        _ => format!("image {old} → {new}"),
    }
}

/// The short form of an image reference for messages: `sha-1111111`, `2.7-alpine`.
pub fn short(full: &str) -> String {
    crate::model::ImageRef::parse(full)
        .map(|r| r.short())
        .unwrap_or_else(|_| full.to_string())
}
