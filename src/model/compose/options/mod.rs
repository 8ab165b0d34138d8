//! The container options of a compose service (`entrypoint`, `user`, `labels`, `tmpfs`,
//! `ulimits`, …) read into [`ContainerOptions`]. Each reader checks its value's form
//! and the bounds Docker would otherwise refuse at create time, so a mistake is
//! reported at its file:line:col when the file is loaded, not when a replica starts.
//!
//! The process limits are read in [`limits`], tmpfs mounts in [`tmpfs`], and
//! `extra_hosts` and `dns` in [`network`].

mod limits;
mod network;
mod tmpfs;

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::super::context::{kind, Ctx};
use super::super::location::KeyPath;
use super::super::spec::{ContainerOptions, Logging};
use super::super::validate::{describe, scalar, string, string_list};
use super::forms::{key_values, mapping, nested};
use limits::ulimits;
use network::{dns, extra_hosts};
use tmpfs::tmpfs_key;

pub(super) use limits::{pids, size};
pub(super) use tmpfs::tmpfs_mount;

/// The label prefix berth keeps for itself (`berth.project`, `berth.spec`, …).
const BERTH_LABEL_PREFIX: &str = "berth.";

/// Reads the option keys of one service; `None` when any has an error (all reported).
pub(super) fn compile<'m>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    get: &dyn Fn(&str) -> Option<&'m Value>,
) -> Option<ContainerOptions> {
    let p = |k: &str| path.key(k);
    macro_rules! read {
        ($key:literal, $default:expr, $reader:expr) => {
            match get($key) {
                None => Some($default),
                Some(v) => $reader(ctx, file, &p($key), v),
            }
        };
    }
    let entrypoint = read!("entrypoint", None, |c, f, kp, v| entrypoint(c, f, kp, v)
        .map(Some));
    let user = read!("user", None, |c, f, kp, v| user(c, f, kp, v).map(Some));
    let working_dir = read!("working_dir", None, |c, f, kp, v| working_dir(c, f, kp, v)
        .map(Some));
    let labels = read!("labels", BTreeMap::new(), labels);
    let hostname = read!("hostname", None, |c, f, kp, v| hostname(c, f, kp, v)
        .map(Some));
    let read_only = read!("read_only", false, boolean);
    let init = read!("init", None, |c, f, kp, v| boolean(c, f, kp, v).map(Some));
    let stop_signal = read!("stop_signal", None, |c, f, kp, v| stop_signal(c, f, kp, v)
        .map(Some));
    let tmpfs = read!("tmpfs", Vec::new(), tmpfs_key);
    let extra_hosts = read!("extra_hosts", Vec::new(), extra_hosts);
    let dns = read!("dns", Vec::new(), dns);
    let logging = read!("logging", None, |c, f, kp, v| logging(c, f, kp, v)
        .map(Some));
    let ulimits = read!("ulimits", BTreeMap::new(), ulimits);
    let shm_size = read!("shm_size", None, |c, f, kp, v| size(c, f, kp, v, 1 << 20)
        .map(Some));
    let pids_limit = read!("pids_limit", None, |c, f, kp, v| pids(c, f, kp, v)
        .map(Some));
    let cap_drop = read!("cap_drop", Vec::new(), cap_drop);
    let no_new_privileges = read!("security_opt", false, security_opt);
    let mem_reservation = read!("mem_reservation", None, |c, f, kp, v| size(
        c,
        f,
        kp,
        v,
        6 << 20
    )
    .map(Some));
    let tty = read!("tty", false, boolean);
    let stdin_open = read!("stdin_open", false, boolean);
    Some(ContainerOptions {
        entrypoint: entrypoint?,
        user: user?,
        working_dir: working_dir?,
        labels: labels?,
        hostname: hostname?,
        read_only: read_only?,
        init: init?,
        stop_signal: stop_signal?,
        tmpfs: tmpfs?,
        extra_hosts: extra_hosts?,
        dns: dns?,
        logging: logging?,
        ulimits: ulimits?,
        shm_size: shm_size?,
        pids_limit: pids_limit?,
        cap_drop: cap_drop?,
        no_new_privileges: no_new_privileges?,
        mem_reservation: mem_reservation?,
        tty: tty?,
        stdin_open: stdin_open?,
        aliases: BTreeMap::new(),
    })
}

fn boolean(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => {
            ctx.error(
                file,
                path,
                format!("expected `true` or `false`; found {}", describe(other)),
            );
            None
        }
    }
}

/// `entrypoint`: a list, or a string split into words as a shell would; an empty list
/// or string clears the image's entrypoint, as in compose.
fn entrypoint(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => match shell_words::split(s) {
            Ok(w) => Some(w),
            Err(_) => {
                ctx.error(
                    file,
                    path,
                    format!("`entrypoint` `{s}` has an unclosed quote; close it or write the entrypoint as a list"),
                );
                None
            }
        },
        other => string_list(
            ctx,
            file,
            path,
            other,
            "`entrypoint`",
            "[\"/docker-entrypoint.sh\"]",
        ),
    }
}

/// `user`: `name`, `uid`, `name:group` or `uid:gid`, inside the container.
fn user(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<String> {
    let text = match v {
        Value::String(_) | Value::Number(_) => scalar(v).unwrap_or_default(),
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`user` must be a string such as `1000:1000`; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 64
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
    };
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) {
        ctx.error(
            file,
            path,
            format!("`user` `{text}` must be `USER` or `USER:GROUP`, each a name or a number (e.g. `1000:1000`, `postgres`)"),
        );
        return None;
    }
    Some(text)
}

fn working_dir(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<String> {
    let s = string(ctx, file, path, v, "/app")?;
    if !s.starts_with('/') || s.contains('\0') {
        ctx.error(
            file,
            path,
            format!(
                "`working_dir` `{s}` must be an absolute path in the container, such as `/app`"
            ),
        );
        return None;
    }
    Some(s)
}

/// `labels`: a mapping, or a list of `KEY=VALUE` (a key alone has an empty value). Keys
/// starting with `berth.` are berth's record of what it owns and are refused.
fn labels(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<BTreeMap<String, String>> {
    let (entries, mut good) = key_values(ctx, file, path, v, ("labels", "label", "KEY=VALUE"))?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let key = &entry.key;
        let value = entry.value.clone().unwrap_or_default();
        let msg = if key.is_empty() || key.contains(['\0', ' ']) {
            Some(format!("label name `{key}` is invalid"))
        } else if key.starts_with(BERTH_LABEL_PREFIX) {
            Some(format!("label `{key}` is not allowed: labels starting with `{BERTH_LABEL_PREFIX}` are berth's record of what it owns; rename it"))
        } else if out.insert(key.clone(), value).is_some() {
            Some(format!("label `{key}` is set twice; keep one"))
        } else {
            None
        };
        if let Some(msg) = msg {
            entry.report(ctx, file, msg);
            good = false;
        }
    }
    good.then_some(out)
}

/// `hostname`: letters, digits, `-` and `.`, as a DNS name.
fn hostname(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<String> {
    let s = string(ctx, file, path, v, "db-primary")?;
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        ctx.error(
            file,
            path,
            format!("`hostname` `{s}` is not a valid host name; use letters, digits and `-`, in labels separated by `.`"),
        );
        return None;
    }
    Some(s)
}

/// `stop_signal`: a signal name (`SIGQUIT`, `SIGRTMIN+3`) or number.
fn stop_signal(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<String> {
    let text = scalar(v).unwrap_or_default();
    let named = text.starts_with("SIG")
        && text.len() > 3
        && text[3..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '+' | '-'));
    let numbered = text.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n));
    if !(named || numbered) {
        ctx.error(
            file,
            path,
            format!(
                "`stop_signal` must be a signal such as `SIGQUIT` or a number from 1 to 64; found {}",
                describe(v)
            ),
        );
        return None;
    }
    Some(text)
}

/// `logging`: `driver` and its `options`. berth's rotation of `json-file` and `local`
/// logs is kept unless the options set their own.
fn logging(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Logging> {
    let m = mapping(ctx, file, path, v, "`logging`")?;
    let l = nested(ctx, file, path, m, &["driver", "options"], &[], &[])?;
    let driver = match l.get("driver") {
        None => "json-file".to_string(),
        Some(d) => {
            let s = string(ctx, file, &path.key("driver"), d, "json-file")?;
            let ok = !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
            if !ok {
                ctx.error(
                    file,
                    &path.key("driver"),
                    format!("log driver `{s}` is not a driver name such as `json-file`, `local` or `journald`"),
                );
                return None;
            }
            s
        }
    };
    let mut options = BTreeMap::new();
    if let Some(o) = l.get("options") {
        let op = path.key("options");
        if !o.is_null() {
            let om = mapping(ctx, file, &op, o, "`logging.options`")?;
            let mut good = true;
            for (k, val) in om {
                let key = scalar(k).unwrap_or_default();
                match scalar(val) {
                    Some(s) => {
                        options.insert(key, s);
                    }
                    None => {
                        ctx.error(
                            file,
                            &op.key(&key),
                            format!("log option `{key}` must be a string; found {}", kind(val)),
                        );
                        good = false;
                    }
                }
            }
            if !good {
                return None;
            }
        }
    }
    Some(Logging { driver, options })
}

/// `security_opt`: only `no-new-privileges` (`:true`, `=true`, or bare), which takes a
/// privilege away; every other option loosens confinement and is refused.
fn security_opt(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<bool> {
    let list = string_list(
        ctx,
        file,
        path,
        v,
        "`security_opt`",
        "[\"no-new-privileges:true\"]",
    )?;
    let mut on = false;
    let mut good = true;
    for (i, o) in list.iter().enumerate() {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => on = true,
            "no-new-privileges:false" | "no-new-privileges=false" => {}
            other => {
                ctx.error(file, &path.index(i), format!("security option `{other}` is refused: only `no-new-privileges` is allowed; the others (seccomp, AppArmor, SELinux labels, systempaths) turn off the confinement that keeps a container from the host"));
                good = false;
            }
        }
    }
    good.then_some(on)
}

/// `cap_drop`: capability names, with or without `CAP_`, or `ALL`.
fn cap_drop(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<String>> {
    let list = string_list(ctx, file, path, v, "`cap_drop`", "[\"ALL\"]")?;
    let mut good = true;
    for (i, c) in list.iter().enumerate() {
        let ok = !c.is_empty()
            && c.len() <= 64
            && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_');
        if !ok {
            ctx.error(
                file,
                &path.index(i),
                format!("capability `{c}` must be an upper-case name such as `NET_RAW` or `ALL`"),
            );
            good = false;
        }
    }
    good.then_some(list)
}
