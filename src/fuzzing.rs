//! Entry points for the fuzz targets (`fuzz/`) and their replay tests: each
//! takes arbitrary bytes and runs them through the same code the daemon
//! and the CLI run on untrusted input. Each returns normally on any input;
//! a panic is a bug.
//!
//! Owns nothing but the glue: how bytes become a config text, a socket
//! stream, a spool file or a tool's output. Not part of the API.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::analyze::classify::classify;
use crate::analyze::parsers::{self, Report, ToolOutput};
use crate::analyze::{AnalyzerDef, Engine, RegexSpec};
use crate::config::raw::{OutputSource, ParserKind, RegexStream};
use crate::ipc::frame;
use crate::ipc::{Envelope, Request, Response};

/// Arbitrary bytes as the text of `.background-tasks.json`.
pub fn config(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Err(e) = crate::config::from_text(Path::new(crate::config::CONFIG_FILE), &text) {
        let crate::config::ConfigError::Invalid { problems } = &e else {
            return;
        };
        for p in problems {
            assert!(p.line >= 1 && p.column >= 1, "{p:?}");
            let _ = p.to_string();
        }
    }
}

/// Arbitrary bytes as what a client writes on the daemon socket: frames
/// read and decoded as the daemon does (until the first error, when it
/// closes the connection), then the same bytes as what the daemon answers,
/// read as the CLI does.
pub fn ipc_frame(bytes: &[u8]) {
    runtime().block_on(async {
        let mut stream = bytes;
        loop {
            match frame::read::<Envelope<serde_json::Value>>(&mut stream).await {
                Ok(envelope) => {
                    if let Ok(request) = Request::from_envelope(envelope) {
                        round_trip(&request);
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                    break;
                }
            }
        }
    });
    let mut stream = bytes;
    while let Ok(response) = frame::read_blocking::<Envelope<Response>>(&mut stream) {
        let _ = serde_json::to_vec(&response).expect("a decoded response encodes");
    }
}

/// A decoded request encodes again and decodes to the same thing.
fn round_trip(request: &Request) {
    let wire = serde_json::to_vec(request).expect("a decoded request encodes");
    let back: Request = serde_json::from_slice(&wire).expect("an encoded request decodes");
    assert_eq!(
        serde_json::to_vec(&back).expect("a decoded request encodes"),
        wire
    );
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime starts")
    })
}

/// Arbitrary bytes as the spool file the daemon drains at start.
pub fn spool(bytes: &[u8]) {
    for line in crate::state::spool::decode(bytes) {
        if let Ok(request) = line.request {
            round_trip(&request);
        }
    }
}

/// The parsers in the order the first byte of a [`parser`] input picks
/// them (`byte % len`).
pub const PARSERS: [ParserKind; 13] = [
    ParserKind::BanditJson,
    ParserKind::Pylint2Json,
    ParserKind::EslintJson,
    ParserKind::NpmAuditV2,
    ParserKind::PipAuditJson,
    ParserKind::SafetyJson,
    ParserKind::RadonCcJson,
    ParserKind::JunitXml,
    ParserKind::CargoJson,
    ParserKind::CargoTestText,
    ParserKind::Sarif,
    ParserKind::Regex,
    ParserKind::ExitCode,
];

/// Arbitrary bytes as a tool's output: the first byte picks the parser
/// (see [`PARSERS`]), the second is the exit code, the rest is what the
/// tool wrote — its report (the file, or stdout) and its stderr. Parsed
/// and classified as the engine does.
pub fn parser(bytes: &[u8]) {
    let [pick, code, output @ ..] = bytes else {
        return;
    };
    let def = &definitions()[usize::from(*pick) % PARSERS.len()];
    let spec = def.external().expect("an external analyzer");
    let exit_code = i32::from(*code);
    let reports: Vec<Report> = if spec.output == OutputSource::Stdout {
        Vec::new()
    } else {
        vec![Report {
            path: PathBuf::from("report"),
            bytes: output.to_vec(),
        }]
    };
    let root = Path::new("/project");
    let out = ToolOutput {
        def,
        spec,
        exit_code,
        exit_class: spec.exit_codes.classify(exit_code),
        stdout: output,
        stderr: output,
        reports: &reports,
        root,
        canonical_root: root,
    };
    let classified = classify(def, exit_code, parsers::parse(&out), output);
    for f in &classified.findings {
        let _ = serde_json::to_vec(f).expect("a finding encodes");
    }
}

/// One analyzer definition per entry of [`PARSERS`]: the built-in one that
/// uses the parser, or (SARIF, regex) a built-in one switched to it.
fn definitions() -> &'static [Arc<AnalyzerDef>] {
    static DEFS: OnceLock<Vec<Arc<AnalyzerDef>>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let config = crate::config::from_text(
            Path::new("<built-in default config>"),
            crate::config::DEFAULT_CONFIG,
        )
        .expect("the default config is valid");
        PARSERS
            .iter()
            .map(|&kind| {
                let found = config
                    .analyzers
                    .values()
                    .find(|d| d.external().is_some_and(|s| s.parser == kind));
                found
                    .cloned()
                    .unwrap_or_else(|| switched(&config.analyzers["eslint"], kind))
            })
            .collect()
    })
}

/// `base` reading its output with the parser `kind` (a gcc-style line
/// pattern for [`ParserKind::Regex`], on both streams).
fn switched(base: &AnalyzerDef, kind: ParserKind) -> Arc<AnalyzerDef> {
    let mut def = base.clone();
    def.name = format!("{kind:?}").to_lowercase();
    if let Engine::External(spec) = &mut def.engine {
        spec.parser = kind;
        spec.output = OutputSource::Stdout;
        if kind == ParserKind::Regex {
            spec.regex = Some(RegexSpec {
                pattern: regex::Regex::new(
                    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<severity>\w+): (?P<message>.*?)(?: \[(?P<rule>[\w-]+)\])?$",
                )
                .expect("the pattern compiles"),
                stream: RegexStream::Both,
                rule: None,
            });
        }
    }
    Arc::new(def)
}

#[cfg(test)]
mod tests {
    //! The fuzz targets' smoke run without the fuzzer: every committed
    //! corpus file, then arbitrary and mangled bytes, through the same
    //! functions (`bench/fuzz.sh` runs the real thing).

    use proptest::prelude::*;

    type Target = fn(&[u8]);

    const TARGETS: [(&str, Target); 4] = [
        ("config", super::config),
        ("ipc_frame", super::ipc_frame),
        ("spool", super::spool),
        ("parser", super::parser),
    ];

    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("a directory entry").path();
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                (path.display().to_string(), bytes)
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_corpus_file_replays() {
        for (target, run) in TARGETS {
            let files = corpus(target);
            assert!(!files.is_empty(), "no corpus for {target}");
            for (name, bytes) in files {
                eprintln!("{name}");
                run(&bytes);
            }
        }
    }

    /// A corpus file of `target` with `edits` applied: each overwrites the
    /// byte at an index (modulo the length) or, for `None`, cuts the file
    /// there.
    fn mangled(target: &str, pick: usize, edits: &[(usize, Option<u8>)]) -> Vec<u8> {
        let files = corpus(target);
        let mut bytes = files[pick % files.len()].1.clone();
        for &(at, edit) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match edit {
                Some(b) => bytes[at] = b,
                None => bytes.truncate(at),
            }
        }
        bytes
    }

    fn edits() -> impl Strategy<Value = Vec<(usize, Option<u8>)>> {
        proptest::collection::vec(
            (any::<usize>(), proptest::option::weighted(0.9, any::<u8>())),
            1..8,
        )
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..512)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn config_takes_any_bytes(b in bytes()) { super::config(&b); }

        #[test]
        fn config_takes_mangled_configs(pick in any::<usize>(), e in edits()) {
            super::config(&mangled("config", pick, &e));
        }

        #[test]
        fn ipc_frame_takes_any_bytes(b in bytes()) { super::ipc_frame(&b); }

        #[test]
        fn ipc_frame_takes_mangled_frames(pick in any::<usize>(), e in edits()) {
            super::ipc_frame(&mangled("ipc_frame", pick, &e));
        }

        #[test]
        fn spool_takes_any_bytes(b in bytes()) { super::spool(&b); }

        #[test]
        fn spool_takes_mangled_spools(pick in any::<usize>(), e in edits()) {
            super::spool(&mangled("spool", pick, &e));
        }

        #[test]
        fn parser_takes_any_bytes(b in bytes()) { super::parser(&b); }

        #[test]
        fn parser_takes_mangled_outputs(pick in any::<usize>(), e in edits()) {
            super::parser(&mangled("parser", pick, &e));
        }
    }
}
