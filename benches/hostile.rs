//! The cost of hostile input: `berth validate` (the built binary, as a child process) on
//! each case of the hostile corpus (`tests/hostile/`), beside the reference stack
//! (`desired/`) for scale. Reports the median wall time and the peak RSS (`ru_maxrss` from
//! `wait4`) of each; the target is under 1 s and 64 MiB per case. Env files that are
//! `/dev/zero` or a FIFO are read by `Desired::resolve` in this process (`berth plan`, the
//! command that reads them, needs Docker), so only their time is reported.
//! `cargo bench --bench hostile [-- ROUNDS]` (default 5).

#[path = "../tests/hostile/corpus.rs"]
mod corpus;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::model::{load_tree, MemTree};
use berth::plan::Desired;

const TIME_TARGET: Duration = Duration::from_secs(1);
const RSS_TARGET_KIB: i64 = 64 << 10;

/// One run of `berth validate`: wall time, peak RSS in KiB, exit code.
struct Run {
    wall: Duration,
    rss_kib: i64,
    code: i32,
}

/// Runs `berth validate TARGET` through a launcher: this bench binary started afresh, which
/// forks and execs berth. Linux keeps a process's peak RSS across exec, and a child
/// spawned from this process would start with the corpus this process holds; the
/// launcher holds nothing, so what is measured is berth's own peak (plus the launcher's
/// few pages, shown by the `/bin/true` row).
fn validate(berth: &Path, target: &Path) -> Run {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg(LAUNCH)
        .arg(berth)
        .arg("validate")
        .arg(target)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run the launcher");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().unwrap());
    let (nanos, rss_kib, code) = (
        fields.next().unwrap(),
        fields.next().unwrap(),
        fields.next().unwrap(),
    );
    Run {
        wall: Duration::from_nanos(nanos as u64),
        rss_kib,
        code: code as i32,
    }
}

const LAUNCH: &str = "--launch";

/// The launcher: forks, execs the command with output to /dev/null, waits for it with
/// `wait4` and prints `nanoseconds peak_rss_kib exit_code`.
fn launch(command: &[String]) -> ! {
    let args: Vec<std::ffi::CString> = command
        .iter()
        .map(|a| std::ffi::CString::new(a.as_str()).unwrap())
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let devnull = std::ffi::CString::new("/dev/null").unwrap();
    let started = Instant::now();
    // SAFETY: the child only calls async-signal-safe functions (open, dup2, execv,
    // _exit) before it execs.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            let null = libc::open(devnull.as_ptr(), libc::O_WRONLY);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            libc::execv(argv[0], argv.as_ptr());
            libc::_exit(127);
        }
    }
    assert!(pid > 0, "fork");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are valid for the call.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let wall = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    println!("{} {} {code}", wall.as_nanos(), usage.ru_maxrss);
    std::process::exit(0)
}

/// The median time and the largest RSS of `rounds` runs, and the exit code of the last.
fn measure(berth: &Path, target: &Path, rounds: usize) -> Run {
    let mut runs: Vec<Run> = (0..rounds).map(|_| validate(berth, target)).collect();
    runs.sort_by_key(|r| r.wall);
    let rss_kib = runs.iter().map(|r| r.rss_kib).max().unwrap_or(0);
    let mid = runs.swap_remove(runs.len() / 2);
    Run { rss_kib, ..mid }
}

/// Writes a case's files into `dir`; returns what to validate.
fn write_case(dir: &Path, case: &corpus::Case) -> PathBuf {
    for (path, bytes) in &case.files {
        std::fs::write(dir.join(path), bytes).unwrap();
    }
    dir.join(case.config())
}

fn env_file_time(env_file: &Path, env_dir: &Path, rounds: usize) -> Duration {
    let yaml = format!(
        "project: hostile\nservices:\n  api:\n    image: registry.example.com/api:v1\n    env_file: {}\n",
        env_file.display()
    );
    let spec = load_tree(&MemTree::new().with("berth.yaml", yaml), "berth.yaml")
        .unwrap()
        .spec
        .unwrap();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let _ = Desired::resolve(spec.clone(), env_dir);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

fn mib(kib: i64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == LAUNCH) {
        launch(&args[i + 1..]);
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let berth = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let reference_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired");
    let reference = measure(&berth, &reference_dir, rounds);
    println!(
        "`berth validate` on each case, {rounds} rounds: median wall time, peak RSS (largest of the rounds); target < {} and < {} per case\n",
        ms(TIME_TARGET),
        mib(RSS_TARGET_KIB)
    );
    println!(
        "| case | input | exit | time | × reference | peak RSS | × reference | within target |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let floor = measure(Path::new("/bin/true"), Path::new("/"), rounds);
    println!(
        "| `/bin/true` (the launcher's floor) | – | {} | {} | {:.1} | {} | {:.1} | – |",
        floor.code,
        ms(floor.wall),
        floor.wall.as_secs_f64() / reference.wall.as_secs_f64(),
        mib(floor.rss_kib),
        floor.rss_kib as f64 / reference.rss_kib as f64,
    );
    println!(
        "| reference stack (`desired/`, valid) | compose project | {} | {} | 1.0 | {} | 1.0 | {} |",
        reference.code,
        ms(reference.wall),
        mib(reference.rss_kib),
        within(&reference)
    );
    let mut worst = (Duration::ZERO, 0i64);
    for case in corpus::cases() {
        let dir = tempfile::tempdir().unwrap();
        let target = write_case(dir.path(), &case);
        let run = measure(&berth, &target, rounds);
        worst = (worst.0.max(run.wall), worst.1.max(run.rss_kib));
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {} |",
            case.name,
            size(&case),
            run.code,
            ms(run.wall),
            run.wall.as_secs_f64() / reference.wall.as_secs_f64(),
            mib(run.rss_kib),
            run.rss_kib as f64 / reference.rss_kib as f64,
            within(&run)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("api.env");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (name, file, env_dir) in [
        (
            "env_file: /dev/zero (in process)",
            Path::new("/dev/zero"),
            Path::new("/dev"),
        ),
        ("env_file: a FIFO (in process)", fifo.as_path(), dir.path()),
    ] {
        let t = env_file_time(file, env_dir, rounds);
        println!(
            "| {name} | – | – | {} | – | – | – | {} |",
            ms(t),
            if t < TIME_TARGET { "yes" } else { "NO" }
        );
    }
    println!(
        "\nslowest case {} ({:.1}× the reference), largest {} ({:.1}× the reference)",
        ms(worst.0),
        worst.0.as_secs_f64() / reference.wall.as_secs_f64(),
        mib(worst.1),
        worst.1 as f64 / reference.rss_kib as f64
    );
}

fn within(run: &Run) -> &'static str {
    if run.wall < TIME_TARGET && run.rss_kib < RSS_TARGET_KIB {
        "yes"
    } else {
        "NO"
    }
}

fn size(case: &corpus::Case) -> String {
    let bytes = case.bytes();
    let amount = if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    };
    match case.files.len() {
        1 => amount,
        n => format!("{amount} in {n} files"),
    }
}
