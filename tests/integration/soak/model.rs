//! What the chaos commits: the stack of the fleet (api gated by a migration, with
//! `max_hosts`; web with a canary), and the history of commits with which of them
//! were valid, so the final state can be compared with the last valid one.

use crate::fleet::Fleet;

/// `max_hosts` of api in the soak's stack.
pub(super) const API_MAX_HOSTS: u32 = 2;
/// The canary host of web.
pub(super) const WEB_CANARY: &str = "h1";

/// A valid desired state: the release (reference and its version string) and the
/// replicas of each service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Desired {
    pub image: String,
    pub version: String,
    pub api: u32,
    pub web: u32,
}

impl Desired {
    pub(super) fn replicas(&self, service: &str) -> u32 {
        match service {
            "api" => self.api,
            _ => self.web,
        }
    }
}

/// One commit's content.
#[derive(Clone, Debug)]
pub(super) enum Content {
    Valid(Desired),
    /// Not applicable.
    Invalid,
}

/// The services of the stack.
pub(super) const SERVICES: [&str; 2] = ["api", "web"];

/// The stack's `berth.yaml` for `d`. The migration leaves a line per start in
/// `starts` and per completed run in `runs`, on a directory every engine mounts.
pub(super) fn stack(f: &Fleet, d: &Desired) -> String {
    format!(
        "project: {p}
services:
  api:
    image: {image}
    replicas: {api}
    volumes: [\"{shared}:/shared\"]
    stop_grace: 1s
    update: {{ monitor: 1s, deadline: 60s, max_hosts: {API_MAX_HOSTS} }}
  web:
    image: {image}
    replicas: {web}
    stop_grace: 1s
    update: {{ monitor: 1s, deadline: 60s, canary: {WEB_CANARY} }}
migrations:
  migrate:
    from: api
    command: [\"sh\", \"-c\", \"cat /version >> /shared/starts; sleep 2; cat /version >> /shared/runs\"]
    gates: [api]
    timeout: 2m
",
        p = f.project,
        image = d.image,
        api = d.api,
        web = d.web,
        shared = f.shared_path(),
    )
}

/// An invalid variant of `d`'s stack, of kind `kind` (0..3): broken YAML, a rule
/// broken (negative replicas), an image reference that does not parse.
pub(super) fn invalid(f: &Fleet, d: &Desired, kind: u64) -> (String, &'static str) {
    let good = stack(f, d);
    match kind {
        0 => (
            good.replace("services:\n", "services:\n  api: [unclosed\n"),
            "broken YAML",
        ),
        1 => (
            good.replace(&format!("replicas: {}", d.api), "replicas: -2"),
            "negative replicas",
        ),
        _ => (
            good.replacen(&d.image, "Not An Image!", 1),
            "bad image reference",
        ),
    }
}

/// The commits made so far, in order, with their SHAs.
#[derive(Default)]
pub(super) struct History {
    pub commits: Vec<(Content, String)>,
}

impl History {
    pub(super) fn push(&mut self, content: Content, sha: String) {
        self.commits.push((content, sha));
    }

    /// The state HEAD~1 had, which `git revert HEAD` brings back.
    pub(super) fn before_head(&self) -> Option<Content> {
        let n = self.commits.len();
        (n >= 2).then(|| self.commits[n - 2].0.clone())
    }

    /// The last valid commit: its desired state and SHA.
    pub(super) fn last_valid(&self) -> Option<(Desired, String)> {
        self.commits.iter().rev().find_map(|(c, sha)| match c {
            Content::Valid(d) => Some((d.clone(), sha.clone())),
            Content::Invalid => None,
        })
    }
}
