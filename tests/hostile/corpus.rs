//! The hostile corpus: desired states that a pusher could write to exhaust the loader.
//! Small cases are committed under `seeds/`; large ones are generated here, so that the
//! test (`tests/hostile.rs`), the benchmark (`benches/hostile.rs`) and the fuzz harness
//! (`tests/fuzz.rs`) read the same bytes. See `README.md` beside this file.

#![allow(dead_code)]

/// One case: a name and the files of a desired-state repository.
pub struct Case {
    /// Short name, shown in tables.
    pub name: &'static str,
    /// Repository-relative files. One file is loaded as that file; several as the
    /// repository root directory.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Case {
    fn one(name: &'static str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            name,
            files: vec![("berth.yaml".to_string(), bytes.into())],
        }
    }

    /// The bytes of all files together.
    pub fn bytes(&self) -> usize {
        self.files.iter().map(|(_, b)| b.len()).sum()
    }

    /// What to load: the file when there is one, the root directory otherwise.
    pub fn config(&self) -> &str {
        match self.files.as_slice() {
            [(name, _)] => name,
            _ => "",
        }
    }
}

/// The committed seeds, by file name.
pub fn seeds() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (
            "huge-numbers.yaml",
            include_bytes!("seeds/huge-numbers.yaml"),
        ),
        (
            "huge-integer.yaml",
            include_bytes!("seeds/huge-integer.yaml"),
        ),
        ("tags.yaml", include_bytes!("seeds/tags.yaml")),
        (
            "two-documents.yaml",
            include_bytes!("seeds/two-documents.yaml"),
        ),
        ("anchors.yaml", include_bytes!("seeds/anchors.yaml")),
        (
            "invalid-utf8.yaml",
            include_bytes!("seeds/invalid-utf8.yaml"),
        ),
    ]
}

const HEAD: &str = "project: hostile\nservices:\n";

/// Every case of the corpus; each must end as an error with a message.
pub fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = seeds()
        .into_iter()
        .map(|(name, bytes)| Case::one(name.trim_end_matches(".yaml"), bytes))
        .collect();
    cases.extend([
        Case::one("deep-block-seq", format!("{}x\n", "- ".repeat(24_000))),
        Case::one("deep-flow-seq", "[".repeat(48_000)),
        Case::one("deep-flow-map", "{a: ".repeat(12_000)),
        Case::one("deep-block-map", deep_block_map(700)),
        Case::one("deep-by-alias", deep_by_alias(100)),
        Case::one("alias-bomb", alias_bomb(9, 10)),
        Case::one("alias-big-scalar", alias_big_scalar()),
        Case::one("alias-cycle", "a: &a [x, *a]\n"),
        Case::one("unknown-keys-165k", unknown_keys_line(165_000)),
        Case::one("one-line-1mib", one_line_services(1_040_000)),
        Case::one("over-1mib", format!("# {}\n", "x".repeat(1 << 20))),
        Case::one("duplicate-keys", duplicate_keys(10_000)),
        Case::one(
            "long-scalar",
            format!("{HEAD}  api:\n    image: {}\n", "x".repeat(1_000_000)),
        ),
        Case::one(
            "long-key",
            format!("{HEAD}  {}: {{}}\n", "k".repeat(1_000_000)),
        ),
        Case::one("long-paths", long_paths()),
        Case::one(
            "many-nodes",
            // A flow list over 20 lines, each within the line limit.
            format!(
                "{HEAD}  api: [\n{}]\n",
                format!("    {}\n", "1,".repeat(20_000)).repeat(20)
            ),
        ),
        Case::one("unknown-references", unknown_references(1_000, 40)),
        Case::one("invalid-utf8-1mib", vec![0xff; 1 << 20]),
        Case::one(
            "control-chars",
            "project: \"\\e[2J\\0\"\nservices: {\x1b[31m: 1}\n",
        ),
        many_files(300),
        big_files(8),
    ]);
    cases
}

fn deep_block_map(levels: usize) -> String {
    let mut s = String::new();
    for i in 0..levels {
        s.push_str(&" ".repeat(2 * i));
        s.push_str("a:\n");
    }
    s
}

/// Flat by its own indentation, deep through aliases of aliases.
fn deep_by_alias(levels: usize) -> String {
    let mut s = String::from("a0: &a0 [x]\n");
    for i in 1..levels {
        s.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
    }
    s
}

/// `levels` anchors, each a list of `width` aliases of the one before: width^levels nodes.
fn alias_bomb(levels: usize, width: usize) -> String {
    let mut s = format!("a0: &a0 [{}]\n", vec!["lol"; width].join(","));
    for i in 1..levels {
        let items = vec![format!("*a{}", i - 1); width].join(",");
        s.push_str(&format!("a{i}: &a{i} [{items}]\n"));
    }
    s
}

/// Few nodes, but each alias stands for half a MiB of text.
/// A 512 KiB block scalar (in lines of 1 KiB, within the line limit), aliased 100 times.
fn alias_big_scalar() -> String {
    let line = format!("  {}\n", "x".repeat(1023));
    format!(
        "a: &a |\n{}b: [{}]\n",
        line.repeat(512),
        vec!["*a"; 100].join(", ")
    )
}

fn unknown_keys_line(bytes: usize) -> String {
    let mut s = String::from("{project: hostile");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!(", k{i}: 1"));
        i += 1;
    }
    s.push_str("}\n");
    s
}

/// One line of services, each with an unpinned image (an error apiece).
fn one_line_services(bytes: usize) -> String {
    let mut s = String::from("{project: hostile, services: {");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!("s{i}: {{image: x}}, "));
        i += 1;
    }
    s.push_str("z: {image: x}}}\n");
    s
}

fn duplicate_keys(n: usize) -> String {
    let mut s = format!("{HEAD}  api:\n");
    for _ in 0..n {
        s.push_str("    image: registry.example.com/api:v1\n");
    }
    s
}

/// Keys of 250 bytes nested 60 deep, then many entries below them.
fn long_paths() -> String {
    let mut s = String::new();
    for i in 0..60 {
        s.push_str(&format!(
            "{}{}{i:02}:\n",
            " ".repeat(2 * i),
            "k".repeat(248)
        ));
    }
    let indent = " ".repeat(120);
    let mut i = 0;
    while s.len() < 1_000_000 {
        s.push_str(&format!("{indent}e{i}: 1\n"));
        i += 1;
    }
    s
}

/// Many services, each naming many services that do not exist.
fn unknown_references(services: usize, refs: usize) -> String {
    let mut s = String::from(HEAD);
    let deps: Vec<String> = (0..refs).map(|i| format!("missing{i}")).collect();
    let deps = deps.join(", ");
    for i in 0..services {
        s.push_str(&format!(
            "  s{i}:\n    image: registry.example.com/s:v1\n    depends_on: [{deps}]\n"
        ));
    }
    s
}

fn many_files(n: usize) -> Case {
    let files = (0..n)
        .map(|i| {
            (
                format!("s{i:04}.yaml"),
                format!("services:\n  s{i}:\n    image: registry.example.com/s:v1\n").into_bytes(),
            )
        })
        .collect();
    Case {
        name: "many-files",
        files,
    }
}

/// Files each under the per-file limit, together over the limit of a load.
fn big_files(n: usize) -> Case {
    let files = (0..n)
        .map(|i| {
            let mut s = format!("services:\n  s{i}:\n    image: registry.example.com/s:v1\n");
            // Comment lines of 1,000 bytes, within the line limit.
            s.push_str(&format!("# {}\n", "x".repeat(997)).repeat(1_000));
            (format!("s{i}.yaml"), s.into_bytes())
        })
        .collect();
    Case {
        name: "big-files",
        files,
    }
}
