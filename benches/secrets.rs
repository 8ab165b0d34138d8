//! Decrypting a 64 KiB env file committed encrypted (`.age`), as the agent does once
//! per commit and on every change of the env directory: the age file decrypted with
//! the host's X25519 identity and parsed, binary and armored, beside the same env file
//! read in plain text from the env directory. Contestants run interleaved, one round each
//! at a time; reports median, min and max and the ratio to the 5 ms target.
//! `cargo bench --bench secrets [-- ROUNDS]`.

mod common;

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use berth::model::EnvFileRef;
use berth::plan::env_file::read_with;
use berth::plan::EnvFile;
use berth::secrets::HostKeys;
use common::{ms, Stats};

const TARGET: Duration = Duration::from_millis(5);

/// 64 KiB of `KEY=VALUE` lines, values of random-looking text.
fn env_text() -> String {
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 64 * 1024 {
        let value = format!(
            "{:016x}{:016x}",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            i ^ 0xdead_beef
        );
        text.push_str(&format!("SETTING_{i:05}={value}\n"));
        i += 1;
    }
    text.truncate(64 * 1024 - 1);
    text.push('\n');
    text
}

fn seal(recipient: &age::x25519::Recipient, plain: &[u8], armor: bool) -> Vec<u8> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).unwrap();
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let mut out = Vec::new();
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, format).unwrap();
    let mut w = encryptor.wrap_output(armored).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap().finish().unwrap();
    out
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let key_file = dir.path().join("host.key");
    std::fs::write(
        &key_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let keys = HostKeys::load(&[key_file]).unwrap();
    let text = env_text();
    std::fs::write(dir.path().join("api.env"), &text).unwrap();
    let sealed = |armor: bool| EnvFileRef {
        path: "secrets/api.env.age".into(),
        required: true,
        sealed: Some(Arc::from(seal(
            &identity.to_public(),
            text.as_bytes(),
            armor,
        ))),
    };
    let contestants: Vec<(&str, EnvFileRef)> = vec![
        (
            "plain env file from the env directory",
            EnvFileRef {
                path: "api.env".into(),
                required: true,
                sealed: None,
            },
        ),
        ("age, binary", sealed(false)),
        ("age, armored", sealed(true)),
    ];
    let run = |f: &EnvFileRef, dir: &Path| {
        let (env, _) = read_with(std::slice::from_ref(black_box(f)), dir, &keys);
        match env {
            EnvFile::Loaded(kvs) => black_box(kvs.len()),
            other => panic!("{other:?}"),
        }
    };
    let lines = run(&contestants[0].1, dir.path());
    for (name, f) in &contestants {
        assert_eq!(run(f, dir.path()), lines, "{name}");
    }
    let mut times = vec![Vec::new(); contestants.len()];
    for round in 0..rounds + 5 {
        for ((_, f), t) in contestants.iter().zip(&mut times) {
            let started = Instant::now();
            run(f, dir.path());
            if round >= 5 {
                t.push(started.elapsed());
            }
        }
    }
    let all: Vec<Stats> = times.into_iter().map(Stats::of).collect();
    println!(
        "64 KiB env file ({} bytes, {lines} variables), {rounds} rounds:\n",
        text.len()
    );
    println!("| contestant | median | min | max | median ÷ 5 ms target | × plain |");
    println!("|---|---|---|---|---|---|");
    for ((name, _), s) in contestants.iter().zip(&all) {
        println!(
            "| {name} | {} | {} | {} | {:.3} | {:.1} |",
            ms(s.median, 3),
            ms(s.min, 3),
            ms(s.max, 3),
            s.median.as_secs_f64() / TARGET.as_secs_f64(),
            s.median.as_secs_f64() / all[0].median.as_secs_f64()
        );
    }
}
