//! Analyzer definitions: the embedded built-ins, config overrides layered
//! over them field by field, and validation into [`AnalyzerDef`].
//!
//! A problem in a user-written definition points into the config file; a
//! problem in a built-in one points into `analyzers/<name>.json` (and is a
//! bug caught by this module's tests).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use regex::Regex;

use super::error::Problem;
use super::issues::{Issues, duration, globs};
use super::load::{Layers, deserialize_at};
use super::raw::{Mode, OutputSource, ParserKind, RawAnalyzer, RawThresholds};
use super::source::{Source, escape};
use crate::analyze::{
    AnalyzerDef, Engine, ExitCodes, ExternalSpec, Install, LazyRegex, RegexSpec, Severity,
    Thresholds,
};
use crate::globs::Globs;

/// The built-in definitions, embedded from `analyzers/`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("bandit", include_str!("../../analyzers/bandit.json")),
    (
        "cargo-test",
        include_str!("../../analyzers/cargo-test.json"),
    ),
    ("clippy", include_str!("../../analyzers/clippy.json")),
    ("eslint", include_str!("../../analyzers/eslint.json")),
    ("gradle", include_str!("../../analyzers/gradle.json")),
    ("maven", include_str!("../../analyzers/maven.json")),
    ("npm-audit", include_str!("../../analyzers/npm-audit.json")),
    ("npm-test", include_str!("../../analyzers/npm-test.json")),
    ("pip-audit", include_str!("../../analyzers/pip-audit.json")),
    ("profile", include_str!("../../analyzers/profile.json")),
    ("pylint", include_str!("../../analyzers/pylint.json")),
    ("pytest", include_str!("../../analyzers/pytest.json")),
    ("radon", include_str!("../../analyzers/radon.json")),
    ("safety", include_str!("../../analyzers/safety.json")),
    ("unittest", include_str!("../../analyzers/unittest.json")),
];

const PLACEHOLDERS: &[&str] = &["files", "files_file", "output", "output_dir", "root"];

/// Resolves every analyzer: built-ins, overridden or not, plus user-defined.
pub fn resolve(
    layers: &Layers,
    overrides: Option<BTreeMap<String, RawAnalyzer>>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Arc<AnalyzerDef>> {
    let mut overrides = overrides.unwrap_or_default();
    let mut out = BTreeMap::new();
    for (name, text) in BUILTIN {
        let path = format!("analyzers/{name}.json");
        let source = match Source::parse(Path::new(&path), (*text).to_owned()) {
            Ok(s) => s,
            Err(p) => {
                problems.extend(p);
                continue;
            }
        };
        let builtin_layers = Layers {
            base: source,
            base_is_default: true,
            local: None,
        };
        let Some(raw) = deserialize_at::<RawAnalyzer>(
            &builtin_layers,
            "",
            builtin_layers.base.value.clone(),
            problems,
        ) else {
            continue;
        };
        let (raw, locator, base, origin) = match overrides.remove(*name) {
            Some(over) => (
                overlay(raw, over),
                layers,
                format!("/analyzers/{}", escape(name)),
                format!("built-in, overridden in {}", files_label(layers)),
            ),
            None => (raw, &builtin_layers, String::new(), "built-in".to_owned()),
        };
        let mut issues = Issues::new(locator, base, problems);
        if let Some(def) = validate(name, &raw, origin, &mut issues) {
            out.insert((*name).to_owned(), Arc::new(def));
        }
    }
    for (name, raw) in overrides {
        let base = format!("/analyzers/{}", escape(&name));
        let mut issues = Issues::new(layers, base, problems);
        if !valid_name(&name) {
            issues.key(
                "",
                format!(
                    "invalid analyzer name `{name}`: use lowercase letters, digits, `-` and `_`"
                ),
            );
            continue;
        }
        let origin = files_label(layers);
        if let Some(def) = validate(&name, &raw, origin, &mut issues) {
            out.insert(name, Arc::new(def));
        }
    }
    out
}

fn files_label(layers: &Layers) -> String {
    let files = layers.files();
    files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or(f.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Fields given in `over` replace those of `base`; thresholds merge per value.
fn overlay(base: RawAnalyzer, over: RawAnalyzer) -> RawAnalyzer {
    let thresholds = match (base.thresholds, over.thresholds) {
        (Some(b), Some(o)) => Some(RawThresholds {
            complexity_low: o.complexity_low.or(b.complexity_low),
            complexity_medium: o.complexity_medium.or(b.complexity_medium),
            complexity_high: o.complexity_high.or(b.complexity_high),
            function_lines: o.function_lines.or(b.function_lines),
            file_lines: o.file_lines.or(b.file_lines),
            file_kb: o.file_kb.or(b.file_kb),
            nesting: o.nesting.or(b.nesting),
        }),
        (b, o) => o.or(b),
    };
    RawAnalyzer {
        description: over.description.or(base.description),
        category: over.category.or(base.category),
        builtin: over.builtin.or(base.builtin),
        command: over.command.or(base.command),
        alternatives: over.alternatives.or(base.alternatives),
        lookup: over.lookup.or(base.lookup),
        version: over.version.or(base.version),
        files: over.files.or(base.files),
        requires: over.requires.or(base.requires),
        mode: over.mode.or(base.mode),
        args: over.args.or(base.args),
        output: over.output.or(base.output),
        output_glob: over.output_glob.or(base.output_glob),
        parser: over.parser.or(base.parser),
        regex: over.regex.or(base.regex),
        exit_codes: over.exit_codes.or(base.exit_codes),
        severity: over.severity.or(base.severity),
        default_severity: over.default_severity.or(base.default_severity),
        thresholds,
        install: over.install.or(base.install),
        network: over.network.or(base.network),
        config_files: over.config_files.or(base.config_files),
        timeout: over.timeout.or(base.timeout),
        cache: over.cache.or(base.cache),
        cache_per_file: over.cache_per_file.or(base.cache_per_file),
        batch_size: over.batch_size.or(base.batch_size),
        env: over.env.or(base.env),
        project_env: over.project_env.or(base.project_env),
        tool_errors: over.tool_errors.or(base.tool_errors),
    }
}

fn validate(
    name: &str,
    raw: &RawAnalyzer,
    origin: String,
    issues: &mut Issues<'_, '_>,
) -> Option<AnalyzerDef> {
    let before = issues.count();
    let mode = raw.mode.unwrap_or(Mode::Batch);
    let files = globs(issues, "/files", raw.files.as_deref());
    let requires = globs(issues, "/requires", raw.requires.as_deref());
    if mode == Mode::Batch && raw.files.is_none() {
        issues.at(
            "/files",
            "a `batch` analyzer needs `files` globs saying which files it reads",
        );
    }
    let timeout = raw
        .timeout
        .as_deref()
        .and_then(|t| duration(issues, "/timeout", t));
    let engine = match raw.builtin {
        Some(b) => {
            for (field, present) in [
                ("command", raw.command.is_some()),
                ("args", raw.args.is_some()),
                ("parser", raw.parser.is_some()),
            ] {
                if present {
                    issues.key(
                        &format!("/{field}"),
                        format!("`{field}` cannot be combined with `builtin`"),
                    );
                }
            }
            Engine::Builtin(b)
        }
        None => Engine::External(Box::new(external(raw, mode, issues)?)),
    };
    if raw.cache_per_file == Some(true) && mode != Mode::Batch {
        issues.at(
            "/cache_per_file",
            "only a `batch` analyzer's results can be cached per file",
        );
    }
    if let Some(0) = raw.batch_size {
        issues.at("/batch_size", "`batch_size` must be at least 1");
    }
    if issues.count() > before {
        return None;
    }
    let digest = {
        let json = serde_json::to_string(raw).expect("raw analyzer serializes");
        let mut h = blake3::Hasher::new();
        h.update(name.as_bytes());
        h.update(&[0]);
        h.update(json.as_bytes());
        h.finalize().to_hex()[..16].to_owned()
    };
    let install = raw.install.clone().unwrap_or_default();
    Some(AnalyzerDef {
        name: name.to_owned(),
        description: raw.description.clone().unwrap_or_default(),
        category: raw.category.unwrap_or(super::raw::Category::Custom),
        engine,
        files,
        requires,
        mode,
        network: raw.network.unwrap_or(false),
        config_files: raw.config_files.clone().unwrap_or_default(),
        timeout,
        cache: raw.cache.unwrap_or(true),
        cache_per_file: raw.cache_per_file.unwrap_or(false) && mode == Mode::Batch,
        batch_size: raw.batch_size.map(|n| n as usize),
        severity_map: raw.severity.clone().unwrap_or_default(),
        default_severity: raw.default_severity.unwrap_or(Severity::Medium),
        thresholds: Thresholds::from_raw(raw.thresholds.as_ref()),
        install: Install {
            pip: install.pip.unwrap_or_default(),
            npm: install.npm.unwrap_or_default(),
            hint: install.hint,
        },
        digest,
        origin,
    })
}

fn external(raw: &RawAnalyzer, mode: Mode, issues: &mut Issues<'_, '_>) -> Option<ExternalSpec> {
    let Some(command) = raw.command.clone().filter(|c| !c.is_empty()) else {
        issues.at(
            "",
            "missing `command` (the executable to run), or `builtin`",
        );
        return None;
    };
    let Some(parser) = raw.parser else {
        issues.at("", "missing `parser` (how to read the tool's output)");
        return None;
    };
    let args = raw.args.clone().unwrap_or_default();
    let has_output = check_args(&args, mode, issues);
    let output = raw.output.unwrap_or(OutputSource::Stdout);
    if output == OutputSource::File && !has_output {
        issues.at("/args", "`output: file` needs `{output}` in `args`");
    }
    let output_glob = raw.output_glob.clone();
    if output == OutputSource::Glob {
        match &output_glob {
            None => issues.at("", "`output: glob` needs `output_glob`"),
            Some(g) => {
                let g = g.strip_prefix("{output_dir}/").unwrap_or(g);
                if let Err(e) = Globs::new(&[g]) {
                    issues.at("/output_glob", e.to_string());
                }
            }
        }
    }
    let regex = regex_spec(parser, raw.regex.as_ref(), issues);
    // Only probe versions the definition asks for: `--version` on an arbitrary
    // script would run it.
    let version = raw.version.clone().unwrap_or_default();
    let version_regex = version
        .regex
        .as_deref()
        .and_then(|r| version_regex(r, issues));
    let codes = raw.exit_codes.clone().unwrap_or_default();
    let default = ExitCodes::default();
    Some(ExternalSpec {
        command,
        alternatives: raw.alternatives.clone().unwrap_or_default(),
        lookup: raw.lookup.clone().unwrap_or_else(|| {
            vec![
                super::raw::Lookup::Venv,
                super::raw::Lookup::NodeModules,
                super::raw::Lookup::Managed,
                super::raw::Lookup::Path,
            ]
        }),
        version_args: version.args,
        version_regex,
        args,
        output,
        output_glob,
        parser,
        regex,
        exit_codes: ExitCodes {
            ok: codes.ok.unwrap_or(default.ok),
            findings: codes.findings.unwrap_or(default.findings),
            not_applicable: codes.not_applicable.unwrap_or_default(),
            error_bits: codes.error_bits,
        },
        env: raw.env.clone().unwrap_or_default(),
        project_env: raw.project_env,
        tool_errors: raw
            .tool_errors
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, r)| match LazyRegex::new(r) {
                Ok((re, _)) => Some(re),
                Err(e) => {
                    issues.at(&format!("/tool_errors/{i}"), format!("invalid regex: {e}"));
                    None
                }
            })
            .collect(),
    })
}

/// Checks placeholders in `args`; returns whether `{output}` is used.
fn check_args(args: &[String], mode: Mode, issues: &mut Issues<'_, '_>) -> bool {
    let mut has_files = false;
    let mut has_output = false;
    for (i, arg) in args.iter().enumerate() {
        let pointer = format!("/args/{i}");
        for ph in placeholders(arg) {
            if !PLACEHOLDERS.contains(&ph) {
                issues.at(
                    &pointer,
                    format!(
                        "unknown placeholder `{{{ph}}}`, expected one of {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("`{{{p}}}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            if ph == "files" && arg != "{files}" {
                issues.at(
                    &pointer,
                    "`{files}` expands to one argument per file, so it must be a whole argument",
                );
            }
            has_files |= ph == "files" || ph == "files_file";
            has_output |= ph == "output";
        }
    }
    match mode {
        Mode::Batch if !has_files => {
            issues.at("/args", "a `batch` analyzer needs `{files}` or `{files_file}` in `args`");
        }
        Mode::Project if has_files => issues.at(
            "/args",
            "a `project` analyzer runs once over the whole project and cannot take `{files}`; use `mode: batch`",
        ),
        _ => {}
    }
    has_output
}

fn regex_spec(
    parser: ParserKind,
    raw: Option<&super::raw::RawRegexParser>,
    issues: &mut Issues<'_, '_>,
) -> Option<RegexSpec> {
    let Some(spec) = raw else {
        if parser == ParserKind::Regex {
            issues.at(
                "",
                "`parser: regex` needs a `regex` object with a `pattern`",
            );
        }
        return None;
    };
    match Regex::new(&spec.pattern) {
        Ok(re) if re.capture_names().flatten().any(|n| n == "message") => Some(RegexSpec {
            pattern: re,
            stream: spec.stream.unwrap_or(super::raw::RegexStream::Stdout),
            rule: spec.rule.clone(),
        }),
        Ok(_) => {
            issues.at(
                "/regex/pattern",
                "the pattern needs a named group `(?P<message>…)`",
            );
            None
        }
        Err(e) => {
            issues.at("/regex/pattern", format!("invalid regex: {e}"));
            None
        }
    }
}

fn version_regex(r: &str, issues: &mut Issues<'_, '_>) -> Option<LazyRegex> {
    match LazyRegex::new(r) {
        Ok((re, captures)) if captures > 0 => Some(re),
        Ok(_) => {
            issues.at("/version/regex", "the version regex needs a capture group");
            None
        }
        Err(e) => {
            issues.at("/version/regex", format!("invalid regex: {e}"));
            None
        }
    }
}

/// `{name}` placeholders in one argument.
pub fn placeholders(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push(&rest[start + 1..start + len]);
        rest = &rest[start + len + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_definition_parses_and_validates() {
        let layers = Layers::from_text(Path::new("c.json"), "{}").unwrap();
        let mut problems = Vec::new();
        let defs = resolve(&layers, None, &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(defs.len(), BUILTIN.len());
        for (name, def) in &defs {
            assert!(!def.description.is_empty(), "{name} has no description");
            if def.external().is_some() {
                assert!(!def.install_hint().is_empty(), "{name} has no install hint");
            }
        }
    }

    #[test]
    fn builtin_files_match_the_embedded_list() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("analyzers");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("--output={output}"), vec!["output"]);
        assert_eq!(placeholders("{a}{b}"), vec!["a", "b"]);
        assert!(placeholders("plain").is_empty());
        assert!(placeholders("{unclosed").is_empty());
    }

    #[test]
    fn names() {
        assert!(valid_name("pip-audit"));
        assert!(valid_name("my_tool2"));
        assert!(!valid_name("My"));
        assert!(!valid_name("-x"));
        assert!(!valid_name(""));
    }
}
