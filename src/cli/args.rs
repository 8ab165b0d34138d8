//! The flags the commands share, and each command's own.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::ValueEnum;

use super::CoordinationArgs;

/// A duration flag: `500ms`, `10s`, `2m`.
#[derive(Debug, Clone, Copy)]
pub struct DurationArg(std::time::Duration);

impl std::str::FromStr for DurationArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::model::units::parse_duration(s)
            .map(DurationArg)
            .map_err(|e| e.to_string())
    }
}

impl From<DurationArg> for std::time::Duration {
    fn from(d: DurationArg) -> Self {
        d.0
    }
}

/// `--lease-ttl`: a duration no shorter than a lease can be renewed within.
fn lease_ttl(s: &str) -> Result<std::time::Duration, String> {
    let d: std::time::Duration = s.parse::<DurationArg>()?.into();
    let min = crate::executor::fleet::LEASE_TTL_MIN;
    if d < min {
        let min = min.as_secs();
        return Err(format!(
            "{s} is shorter than {min}s: a lease is renewed every third of it, and a shorter \
             one could lapse while its holder still rolls out; give at least {min}s"
        ));
    }
    Ok(d)
}

/// Where the desired state comes from, and what the host allows it.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SourceArgs {
    /// The desired state on disk: a compose file, a berth.yaml file, or a directory
    /// holding either. Repeat it to merge compose files in order (`-f compose.yaml -f
    /// compose.prod.yml`); the first file's directory is the project's.
    #[arg(long, short = 'f', env = "BERTH_FILE", conflicts_with = "repo")]
    pub file: Vec<PathBuf>,
    /// A git repository holding the desired state: a URL (https://, ssh://, git@host:path,
    /// file://) or a local path.
    #[arg(long, env = "BERTH_REPO", hide_env_values = true)]
    pub repo: Option<String>,
    /// The branch followed.
    #[arg(long, env = "BERTH_BRANCH", default_value = "main")]
    pub branch: String,
    /// The file or directory of the desired state inside the repository (default: its
    /// root). Repeat it to merge compose files in order.
    #[arg(long, env = "BERTH_PATH")]
    pub path: Vec<String>,
    /// A file holding the token for https remotes (the BERTH_GIT_TOKEN variable works too).
    #[arg(long, env = "BERTH_GIT_TOKEN_FILE")]
    pub git_token_file: Option<PathBuf>,
    /// The private key for ssh remotes. Without it, the keys of the ssh-agent named by
    /// SSH_AUTH_SOCK are offered.
    #[arg(long, env = "BERTH_GIT_SSH_KEY")]
    pub git_ssh_key: Option<PathBuf>,
    /// A file (mode 600) whose first line is the passphrase of --git-ssh-key.
    #[arg(long, env = "BERTH_GIT_SSH_PASSPHRASE_FILE")]
    pub git_ssh_passphrase_file: Option<PathBuf>,
    /// known_hosts for ssh remotes, as OpenSSH writes it (hashed names, [host]:port,
    /// patterns, @revoked, @cert-authority); required: host keys are always checked.
    #[arg(long, env = "BERTH_GIT_KNOWN_HOSTS")]
    pub git_known_hosts: Option<PathBuf>,
    /// Apply only commits signed (SSH, namespace git) by a key in this allowed-signers
    /// file, git's gpg.ssh.allowedSignersFile format.
    #[arg(long, env = "BERTH_VERIFY_SIGNATURES")]
    pub verify_signatures: Option<PathBuf>,
    /// A host path prefix bind mounts may use, `PATH[:rw]` (repeatable; none by
    /// default). Mounts under it are read-only unless `:rw`. No symlink below the
    /// prefix is followed. A runtime socket (Docker's, containerd's, …), or a directory
    /// holding one, is refused unless the socket's own path is named.
    #[arg(
        long = "allow-host-path",
        env = "BERTH_ALLOW_HOST_PATH",
        value_delimiter = ',',
        value_name = "PATH[:rw]"
    )]
    pub allow_host_path: Vec<crate::model::AllowedHostPath>,
}

/// Who this host is, for placement.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HostArgs {
    /// This host's name, matched by `placement.hosts` (default: the machine's hostname).
    #[arg(long = "host", env = "BERTH_HOST")]
    pub host: Option<String>,
    /// A label of this host, matched by `placement.labels` (repeatable, KEY=VALUE).
    #[arg(long = "host-label", env = "BERTH_HOST_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub host_label: Vec<(String, String)>,
    /// The only directory env files are read from; `<project>` stands for the project
    /// (default: /etc/berth/<project>). A commit naming an env file elsewhere is refused
    /// for that service.
    #[arg(long = "env-dir", env = "BERTH_ENV_DIR", value_name = "DIR")]
    pub env_dir: Option<PathBuf>,
    /// An age identity this host decrypts the repository's `.age` files with: a file
    /// of X25519 identities (`age-keygen -o FILE`) or an unencrypted ssh-ed25519 /
    /// ssh-rsa private key (repeatable). Keep it mode 600; `berth secrets recipients`
    /// prints the line to add to the repository's `.berth/recipients`.
    #[arg(
        long = "age-identity",
        env = "BERTH_AGE_IDENTITY",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub age_identity: Vec<PathBuf>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

impl HostArgs {
    /// The host identity, without its age identities (for its name and labels).
    pub(crate) fn host(&self) -> crate::plan::Host {
        crate::plan::Host {
            name: self.host.clone().unwrap_or_else(crate::host::hostname),
            labels: self.host_label.iter().cloned().collect(),
            env_dir: self.env_dir.clone(),
            keys: Default::default(),
        }
    }

    /// The host with its age identities read (`--age-identity`), for resolving a
    /// desired state; an identity file that cannot be read is an error, never skipped.
    pub(crate) fn host_with_keys(&self) -> Result<crate::plan::Host, String> {
        Ok(crate::plan::Host {
            keys: crate::secrets::HostKeys::load(&self.age_identity)?,
            ..self.host()
        })
    }
}

/// How a converge behaves.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConvergeArgs {
    /// Where berth keeps what it writes on the host: mounted repository files, the
    /// ledger, the git clone.
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
    /// Where decrypted secret files (from the repository's `.age` files) are written
    /// for containers to mount: it must be a tmpfs, so they never reach a disk.
    #[arg(long, env = "BERTH_RUNTIME_DIR", default_value = crate::secrets::runtime::DEFAULT_RUNTIME_DIR)]
    pub runtime_dir: PathBuf,
    /// The first retry delay of a failed service; later ones double.
    #[arg(long, env = "BERTH_BACKOFF_INITIAL", default_value = "10s")]
    pub backoff_initial: DurationArg,
    /// The longest retry delay.
    #[arg(long, env = "BERTH_BACKOFF_MAX", default_value = "5m")]
    pub backoff_max: DurationArg,
    /// Engine calls that make Docker work (creates, starts, pulls, removes) in flight
    /// at once; health gates and other waits hold none, and every service whose
    /// dependencies are done moves at once.
    #[arg(long, env = "BERTH_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Pause between taking an old replica off its networks and stopping it.
    #[arg(long, env = "BERTH_DRAIN", default_value = "1s")]
    pub drain: DurationArg,
    /// Keep services that left the desired state running.
    #[arg(long, env = "BERTH_NO_PRUNE")]
    pub no_prune: bool,
    #[command(flatten)]
    pub coordination: CoordinationArgs,
}

/// Flags of `berth apply`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub converge: ConvergeArgs,
    /// A compose project's name when its files have no top-level `name:`
    /// (default: the directory's name).
    #[arg(long, env = "BERTH_PROJECT", value_name = "NAME")]
    pub project: Option<String>,
    /// Retries of a failed service within this run, with exponential backoff.
    #[arg(long, env = "BERTH_RETRIES", default_value_t = 0)]
    pub retries: u32,
    /// The commit being applied, recorded in labels and history (set by itself with --repo).
    #[arg(long, env = "BERTH_COMMIT")]
    pub commit: Option<String>,
    /// How long to wait for another berth (agent or apply) working on the same state
    /// dir before giving up with exit status 1.
    #[arg(long, env = "BERTH_LOCK_TIMEOUT", default_value = "5m")]
    pub lock_timeout: DurationArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
}

/// Flags of `berth plan`.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Where the git clone is kept (with --repo).
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
    /// A compose project's name when its files have no top-level `name:`
    /// (default: the directory's name).
    #[arg(long, env = "BERTH_PROJECT", value_name = "NAME")]
    pub project: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
}

/// Flags of `berth config`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// A compose file, a berth.yaml file, or a directory holding either.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// A compose file (repeatable: merged in order); replaces PATH.
    #[arg(long, short = 'f', conflicts_with = "path")]
    pub file: Vec<PathBuf>,
    /// A compose project's name when its files have no top-level `name:`
    /// (default: the directory's name).
    #[arg(long, env = "BERTH_PROJECT", value_name = "NAME")]
    pub project: Option<String>,

    /// A host path prefix bind mounts may use, `PATH[:rw]` (repeatable; read-only
    /// unless `:rw`).
    #[arg(
        long = "allow-host-path",
        env = "BERTH_ALLOW_HOST_PATH",
        value_delimiter = ',',
        value_name = "PATH[:rw]"
    )]
    pub allow_host_path: Vec<crate::model::AllowedHostPath>,
    /// Where a compose project's host `.env` is read from; `<project>` stands for the
    /// project (default: /etc/berth/<project>). Its values are masked.
    #[arg(long = "env-dir", env = "BERTH_ENV_DIR", value_name = "DIR")]
    pub env_dir: Option<PathBuf>,
    /// Output format: compose YAML (`human`) or JSON.
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
}

/// Flags of `berth convert`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConvertArgs {
    /// A format v1 file (berth.yaml), or a directory of them.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Write the compose file here rather than to stdout. It must not exist yet; when
    /// the stack mounts repository files it goes beside the input, where their relative
    /// paths lead.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Flags of `berth adopt`: those of `berth apply` (the same desired state, state dir
/// and host), plus what to adopt.
#[derive(Debug, clap::Args)]
pub(crate) struct AdoptArgs {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub converge: ConvergeArgs,
    /// The docker compose project to take over (its `com.docker.compose.project`
    /// label); it must be the desired state's project, whose objects have the same
    /// names. Required: what is taken over is the operator's word, not the file's.
    #[arg(long, env = "BERTH_PROJECT", value_name = "NAME")]
    pub project: String,
    /// Print what would be adopted, replaced and left alone, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format: text, or one JSON document (`plan`, then `switched`, `apply` or
    /// `error`).
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
    /// How long to wait for another berth (agent or apply) working on the same state
    /// dir before giving up with exit status 1.
    #[arg(long, env = "BERTH_LOCK_TIMEOUT", default_value = "5m")]
    pub lock_timeout: DurationArg,
}

/// Flags of `berth agent`.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub converge: ConvergeArgs,
    /// The HTTP listener: GET /healthz, /metrics, /status; POST /hooks/git and
    /// /control/reconcile, which need the webhook secret's HMAC here. The same routes
    /// are served without it on `<state-dir>/control.sock` (mode 0600).
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:9280")]
    pub listen: SocketAddr,
    /// The only project this agent manages: a commit naming another is refused. A
    /// compose project without a top-level `name:` takes this name.
    #[arg(long, env = "BERTH_PROJECT")]
    pub project: Option<String>,
    /// How often a remote is polled (±10 % jitter); a local path is watched instead.
    #[arg(long, env = "BERTH_INTERVAL", default_value = "30s")]
    pub interval: DurationArg,
    /// How often everything is resynced even without a trigger.
    #[arg(long, env = "BERTH_RESYNC", default_value = "5m")]
    pub resync: DurationArg,
    /// A file holding the webhook's shared secret; without it the webhook is off.
    #[arg(long, env = "BERTH_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Write each deploy's outcome back to the git host as a commit status (context
    /// `berth/<host>`): github, gitlab, gitea (Forgejo too), or auto from --repo's host.
    #[arg(long, value_enum, env = "BERTH_GIT_STATUS", value_name = "PROVIDER")]
    pub git_status: Option<GitStatusArg>,
    /// A file holding the API token that sets commit statuses (--git-status).
    #[arg(long, env = "BERTH_GIT_STATUS_TOKEN_FILE", value_name = "PATH")]
    pub git_status_token_file: Option<PathBuf>,
    /// The API base of a self-hosted git host for --git-status: GitHub Enterprise
    /// `https://host/api/v3`, GitLab or Gitea `https://host` (default: from --repo).
    #[arg(long, env = "BERTH_GIT_STATUS_URL", value_name = "URL")]
    pub git_status_url: Option<String>,
    /// Attempts per failed (service, spec) before it is held until the desired state changes.
    #[arg(long, env = "BERTH_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// With a shared ledger: the longest one reconcile waits for the fleet (the canary,
    /// a rollout lease, another host's migration) before it reports the service as
    /// waiting in /status and looks again.
    #[arg(long, env = "BERTH_FLEET_WAIT", default_value = "30s")]
    pub fleet_wait: DurationArg,
    /// With a shared ledger: how long this host's rollout lease (`update.max_hosts`)
    /// lasts unless renewed (every third of it); a host that dies mid-rollout holds
    /// the others up for at most this long. At least 3s.
    #[arg(long, env = "BERTH_LEASE_TTL", default_value = "30s", value_parser = lease_ttl)]
    pub lease_ttl: std::time::Duration,
    /// Posts deploy events (deployed, failed, rolled back, invalid commit) to this URL
    /// (repeatable; http:// or https://), in the format written before `=`:
    /// `slack=https://hooks.slack.com/services/…`; json, slack (or mattermost),
    /// discord, teams, ntfy. A plain URL gets --notify-format.
    #[arg(
        long = "notify-url",
        env = "BERTH_NOTIFY_URL",
        value_name = "[FORMAT=]URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify_url: Vec<String>,
    /// The format of a --notify-url written without `FORMAT=`.
    #[arg(long, value_enum, env = "BERTH_NOTIFY_FORMAT", default_value_t = NotifyFormat::Json)]
    pub notify_format: NotifyFormat,
    /// A PEM file of CA certificates trusted for https:// notification URLs, beside the
    /// system's roots: the private CA of an internal endpoint.
    #[arg(long, env = "BERTH_NOTIFY_CA_FILE", value_name = "PATH")]
    pub notify_ca_file: Option<PathBuf>,
    /// A file holding the secret `json` notifications are signed with (HMAC-SHA256 in
    /// `X-Berth-Signature-256`, over `X-Berth-Timestamp` and the body); at least 16
    /// bytes.
    #[arg(long, env = "BERTH_NOTIFY_SECRET_FILE", value_name = "PATH")]
    pub notify_secret_file: Option<PathBuf>,
}

/// Notification payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NotifyFormat {
    /// berth's event as JSON (signed with --notify-secret-file).
    Json,
    /// A Slack incoming-webhook payload (also Mattermost).
    #[value(alias = "mattermost")]
    Slack,
    /// A Discord webhook message with one embed.
    Discord,
    /// A Microsoft Teams Workflows message with an Adaptive Card.
    Teams,
    /// An ntfy JSON publish (the URL ends with the topic).
    Ntfy,
}

/// Flags of `berth pause` and `berth resume`.
#[derive(Debug, clap::Args)]
pub(crate) struct PauseArgs {
    /// The service; every service when left out.
    pub service: Option<String>,
    /// The agent's state dir; the running agent is told to reconcile at once through
    /// its control socket there (`control.sock`).
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
}

/// Flags of `berth status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The agent's listener, asked first.
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:9280")]
    pub listen: SocketAddr,
    /// Where the ledger lives, read when no agent answers.
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub coordination: CoordinationArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
    /// Keep looking, and print the status again each time it changes (redrawn in place
    /// on a terminal); stop with Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// With `--watch`, how often to look.
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub watch_every: DurationArg,
}

/// Flags of `berth history`.
#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// Where the ledger lives (`<state-dir>/ledger.db`).
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub coordination: CoordinationArgs,
    /// Only this project.
    #[arg(long, env = "BERTH_PROJECT")]
    pub project: Option<String>,
    /// Only deploys that touched this service.
    #[arg(long, env = "BERTH_SERVICE")]
    pub service: Option<String>,
    /// At most this many deploys, newest first.
    #[arg(long, env = "BERTH_LIMIT", default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Readable text.
    Human,
    /// One JSON document.
    Json,
}

/// The commit-status APIs of `--git-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GitStatusArg {
    /// Told from --repo's host: github.com, a host named *gitlab*, codeberg.org or *gitea*/*forgejo*.
    Auto,
    /// GitHub or GitHub Enterprise Server.
    Github,
    /// GitLab.
    Gitlab,
    /// Gitea or Forgejo.
    Gitea,
}

/// Where `berth bump` and `berth rollback` find the desired state, and what they do
/// with the commit.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReleaseArgs {
    /// The desired state in this checkout: a compose file, a berth.yaml file, or a
    /// directory holding either (repeat it for compose files merged in order).
    #[arg(long, short = 'f', env = "BERTH_FILE", default_value = ".")]
    pub file: Vec<PathBuf>,
    /// A compose project's name when its files have no top-level `name:`.
    #[arg(long, env = "BERTH_PROJECT", value_name = "NAME")]
    pub project: Option<String>,
    /// A host path prefix bind mounts may use, `PATH[:rw]`, for the check of the result
    /// (as `berth validate`).
    #[arg(
        long = "allow-host-path",
        env = "BERTH_ALLOW_HOST_PATH",
        value_delimiter = ',',
        value_name = "PATH[:rw]"
    )]
    pub allow_host_path: Vec<crate::model::AllowedHostPath>,
    /// Sign the commit with git's signing configuration (`git commit -S`: gpg, or ssh
    /// with `gpg.format ssh` and `user.signingkey`). `commit.gpgsign=true` signs too.
    #[arg(long, env = "BERTH_SIGN")]
    pub sign: bool,
    /// Push the commit to the branch's upstream; a push rejected because the remote
    /// moved is replayed on the new tip (the edit made again, not a merge) and retried.
    #[arg(long, env = "BERTH_PUSH")]
    pub push: bool,
}

/// Flags of `berth bump`.
#[derive(Debug, clap::Args)]
pub(crate) struct BumpArgs {
    /// The service whose image changes.
    pub service: String,
    /// The new image (`registry/name:tag`, `…@sha256:…`) or only its tag (no `/`, `:`
    /// or `@`): then the repository stays.
    #[arg(value_name = "IMAGE_OR_TAG")]
    pub image: String,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Ask the image's registry first whether the tag exists (credentials from the
    /// Docker config); a missing tag refuses the bump before anything is written.
    #[arg(long, env = "BERTH_CHECK_IMAGE")]
    pub check_image: bool,
    /// A registry host (`HOST[:PORT]`) asked over plain http by `--check-image`
    /// (loopback registries always are).
    #[arg(
        long,
        env = "BERTH_INSECURE_REGISTRY",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub insecure_registry: Vec<String>,
    /// A paragraph added to the commit message (e.g. the build it comes from).
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
}

/// Flags of `berth rollback`.
#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {
    /// The service whose last image change is undone.
    pub service: String,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Show the change that would be undone, and how, without committing.
    #[arg(long)]
    pub dry_run: bool,
}
