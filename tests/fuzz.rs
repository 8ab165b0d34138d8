//! A fuzz harness on stable Rust: mutations of the committed seeds (`tests/hostile/seeds/`,
//! `desired/`, `examples/`, `tests/compose/`) go through load and validation, as format v1
//! and as a compose file, and none may panic. Each load
//! runs on a thread with a 2 MiB stack, the size the agent's worker threads get, so a
//! recursion that escapes the depth limit aborts the run instead of passing unseen.
//!
//! `BERTH_FUZZ_SECS` sets how long it runs (3 s by default, so `cargo test` runs it
//! briefly); `BERTH_FUZZ_SEED` replays a run. For a long run:
//! `BERTH_FUZZ_SECS=600 cargo test --release --test fuzz -- --nocapture`.
//! Inputs that panic, or that take longer than a second, are written to
//! `target/fuzz-findings/`.

#[path = "hostile/corpus.rs"]
mod corpus;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use berth::model::{load_tree, MemTree};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Pieces of YAML syntax and of berth's format that mutations insert.
const TOKENS: &[&str] = &[
    "- ",
    "[",
    "]",
    "{",
    "}",
    ": ",
    ", ",
    "? ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a",
    "<<: [*a, *b]",
    "!!binary ",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!map ",
    "!custom ",
    "!<tag:x> ",
    "|",
    ">-",
    "'",
    "\"",
    "#",
    "\n",
    "  ",
    "\t",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x:\n",
    "~",
    "null",
    "true",
    "1e999",
    "-1e999",
    ".nan",
    ".inf",
    "-0",
    "0x7fffffffffffffffff",
    "0o777",
    "99999999999999999999",
    "-9223372036854775809",
    "18446744073709551616",
    "1.5",
    "ms",
    "s",
    "h",
    "99999999999999999999h",
    "1e308s",
    "999999999999t",
    "65536",
    "-1",
    ":80",
    "80:80/udp",
    "\u{0}",
    "\u{1b}[2J",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "\\u0000",
    "replicas: ",
    "image: ",
    "ports: ",
    "stop_grace: ",
    "env: ",
    "env_file: ",
    "volumes: ",
    "depends_on: ",
    "health: ",
    "resources: ",
    "update: ",
    "memory: ",
    "cpus: ",
    "migrations: ",
    "networks: ",
    "services: ",
    "project: ",
    "./",
    "../",
    "/var/run/docker.sock",
    "x/y:v1",
    "@sha256:",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next() as u8;
        }
        2 | 3 => {
            let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
            let at = rng.below(len + 1);
            input.splice(at..at, token.iter().copied());
        }
        4 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            input.drain(start..end);
        }
        5 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(256)).min(len);
            let copy = input[start..end].to_vec();
            let most = if rng.below(8) == 0 { 200 } else { 4 };
            let times = 1 + rng.below(most);
            let at = rng.below(len + 1);
            let repeated: Vec<u8> = copy
                .iter()
                .copied()
                .cycle()
                .take(copy.len() * times)
                .collect();
            input.splice(at..at, repeated);
        }
        6 => {
            let other = &pool[rng.below(pool.len())];
            if !other.is_empty() {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(512)).min(other.len());
                let at = rng.below(len + 1);
                input.splice(at..at, other[start..end].iter().copied());
            }
        }
        7 => {
            let most = if rng.below(16) == 0 { 5_000 } else { 80 };
            let depth = 1 + rng.below(most);
            let opener: &[u8] = [b"- ".as_slice(), b"[", b"{a: ", b"? "][rng.below(4)];
            let at = line_start(input, rng.below(len + 1));
            let nest: Vec<u8> = opener
                .iter()
                .copied()
                .cycle()
                .take(opener.len() * depth)
                .collect();
            input.splice(at..at, nest);
        }
        _ => {
            let at = line_start(input, rng.below(len + 1));
            let indent = rng.below(12);
            input.splice(at..at, std::iter::repeat_n(b' ', indent));
        }
    }
}

fn line_start(input: &[u8], at: usize) -> usize {
    input[..at]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1)
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<Vec<u8>> = corpus::seeds()
        .into_iter()
        .map(|(_, b)| b.to_vec())
        .collect();
    out.push(std::fs::read(root.join("desired/docker-compose.prod.yml")).unwrap());
    for entry in std::fs::read_dir(root.join("examples")).unwrap().flatten() {
        for name in ["berth.yaml", "compose.yaml"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(name)) {
                out.push(bytes);
            }
        }
    }
    for entry in std::fs::read_dir(root.join("tests/compose"))
        .unwrap()
        .flatten()
    {
        for name in ["compose.yaml", "docker-compose.yml"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(name)) {
                out.push(bytes);
            }
        }
    }
    out
}

/// The committed `.env` beside a compose file under fuzzing: variables the compose
/// seeds use, and one long value.
const DOTENV: &str = "API_TAG=sha-1111111\nTAG=1\nN=3\nHOST_IP=127.0.0.1\nLONG=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";

/// Loads `input` as `berth.yaml` beside the reference stack's mounted file, and as a
/// compose file beside a committed `.env`, on a thread with a 2 MiB stack; `Err` carries
/// a panic's message.
fn run_one(input: Vec<u8>, caddyfile: &'static [u8]) -> Result<(), String> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            catch_unwind(AssertUnwindSafe(|| {
                let tree = MemTree::new()
                    .with("berth.yaml", input.clone())
                    .with("files/Caddyfile", caddyfile)
                    .with("stack/compose.yaml", input)
                    .with("stack/.env", DOTENV.as_bytes())
                    .with("stack/files/Caddyfile", caddyfile);
                for path in ["berth.yaml", "stack"] {
                    let loaded = load_tree(&tree, path).expect("a file in memory is readable");
                    // Rendering is part of what an operator sees; it must not panic either.
                    let _ = loaded.diagnostics.to_string();
                }
            }))
            .map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            })
        })
        .expect("spawn")
        .join()
        .unwrap_or_else(|_| Err("the thread died".into()))
}

fn save(dir: &Path, kind: &str, n: u64, input: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{kind}-{n}.yaml"));
    std::fs::write(&path, input).unwrap();
    path
}

#[test]
fn load_never_panics_on_mutated_seeds() {
    let secs: u64 = std::env::var("BERTH_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("BERTH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    let findings = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
    let caddyfile: &'static [u8] = Box::leak(
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("desired/Caddyfile"))
            .unwrap()
            .into_boxed_slice(),
    );
    let mut rng = Rng(seed);
    let mut pool = seeds();
    let seed_count = pool.len();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut runs, mut crashes, mut slow) = (0u64, 0u64, 0u64);
    let mut slowest = Duration::ZERO;
    // Quiet: a panic is reported below with the file that reproduces it.
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        let mut input = pool[rng.below(pool.len())].clone();
        for _ in 0..1 + rng.below(6) {
            mutate(&mut rng, &mut input, &pool);
        }
        input.truncate(2 << 20);
        let started = Instant::now();
        let outcome = run_one(input.clone(), caddyfile);
        let took = started.elapsed();
        runs += 1;
        slowest = slowest.max(took);
        if let Err(panic) = outcome {
            crashes += 1;
            let path = save(&findings, "panic", runs, &input);
            eprintln!("panic: {panic} (input: {})", path.display());
        } else if took > Duration::from_secs(1) {
            slow += 1;
            let path = save(&findings, "slow", runs, &input);
            eprintln!("slow: {took:?} (input: {})", path.display());
        }
        // Keep some mutants so that mutations compound; the seeds always stay.
        if input.len() < 64 << 10 && rng.below(8) == 0 {
            if pool.len() < 512 {
                pool.push(input);
            } else {
                let i = seed_count + rng.below(pool.len() - seed_count);
                pool[i] = input;
            }
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "fuzz: seed {seed}, {secs} s, {runs} executions, {crashes} panics, {slow} over 1 s, slowest {slowest:?}"
    );
    assert_eq!(
        crashes,
        0,
        "inputs that panic are in {}",
        findings.display()
    );
}
