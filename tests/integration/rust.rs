//! cargo clippy and cargo test through `bgtask run`.

use crate::harness::{Project, rules_lines, run_of};

#[test]
fn clippy_deny_lint_and_failing_test() {
    let p = Project::fixture("rust-crate");
    let run = p.bgtask(&["run", "clippy", "cargo-test", "--format", "json"]);
    run.code(1);
    let report = run.json();
    assert_eq!(
        rules_lines(&report, "clippy"),
        [
            ("clippy::approx_constant".to_owned(), 10),
            ("clippy::needless_return".to_owned(), 5)
        ]
    );
    assert_eq!(
        run_of(&report, "clippy")["exit_code"],
        101,
        "deny lint: 101 and still findings"
    );
    assert_eq!(run_of(&report, "clippy")["status"], "findings");
    assert_eq!(
        rules_lines(&report, "cargo-test"),
        [("test-failure".to_owned(), 29)]
    );
    assert_eq!(run_of(&report, "cargo-test")["tests"]["failed"], 1);
}

#[test]
fn clippy_101_without_an_error_diagnostic_is_a_tool_error() {
    let p = Project::fixture("rust-crate");
    let manifest = p.read("Cargo.toml");
    p.file("Cargo.toml", &format!("{manifest}\nbroken = [\n"));
    let run = p.bgtask(&["run", "clippy", "--format", "json"]);
    run.code(2);
    let report = run.json();
    let clippy = run_of(&report, "clippy");
    assert_eq!(clippy["status"], "tool_error");
    let reason = clippy["reason"].as_str().unwrap();
    assert!(reason.contains("without an error diagnostic"), "{reason}");
}

#[test]
fn a_compile_error_is_a_tool_error_that_names_it() {
    let p = Project::fixture("rust-crate");
    p.file("src/extra.rs", "");
    let lib = p.read("src/lib.rs");
    p.file(
        "src/lib.rs",
        &format!("{lib}\npub fn broken() -> u32 {{ undefined_name }}\n"),
    );
    let report = p
        .bgtask(&["run", "clippy", "--format", "json"])
        .code(2)
        .json();
    let clippy = run_of(&report, "clippy");
    assert_eq!(clippy["status"], "tool_error");
    assert!(
        clippy["reason"]
            .as_str()
            .unwrap()
            .starts_with("build failed"),
        "{clippy:#}"
    );
    assert!(
        rules_lines(&report, "clippy")
            .iter()
            .any(|(r, _)| r == "rustc::E0425")
    );
}
