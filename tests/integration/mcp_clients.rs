//! `bgtask mcp` and the dashboard's `/mcp` driven by MCP clients nobody
//! here wrote, from npm (installed by `scripts/test.sh`): the MCP
//! Inspector's CLI mode over stdio and over HTTP, and the MCP conformance
//! suite in server mode against the HTTP endpoint, with only the scenarios
//! `tests/mcp/conformance-expected.yml` explains allowed to fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::dashboard::Dashboard;
use crate::harness::{Project, bgtask_bin, manifest_dir, tool_cache};
use crate::notify_servers::available;

fn node_tools() -> Option<PathBuf> {
    let dir = tool_cache().join("mcp-node/node_modules");
    let present = dir.join(".bin/mcp-inspector").exists()
        && dir.join(".bin/conformance").exists()
        && dir.join("node/bin/node").exists();
    available(
        "the MCP Inspector and conformance suite",
        present,
        "npm install @modelcontextprotocol/inspector@2.12.0 @modelcontextprotocol/conformance@0.1.16 node@22 into target/test-cache/mcp-node (scripts/test.sh does)",
    )
    .then_some(dir)
}

fn app() -> Project {
    let p = Project::fixture("python-app");
    p.commit_all("init");
    p.bgtask(&["trust", "--yes"]).code(0);
    p
}

/// The inspector's CLI with `args`: its exit code and what it printed.
fn inspector(p: &Project, tools: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(tools.join(".bin/mcp-inspector"))
        .arg("--cli")
        .args(args)
        .current_dir(p.path())
        .env("MCP_INSPECTOR_SECRET_STORE", "memory")
        .env("HOME", p.path().join(".inspector-home"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// `-e K=V` for each variable bgtask needs (the inspector passes a stdio
/// server only a few of its own).
fn env_args(p: &Project) -> Vec<String> {
    p.env_vars()
        .into_iter()
        .filter(|(k, _)| k.starts_with("BGTASK") || k == "XDG_RUNTIME_DIR")
        .flat_map(|(k, v)| ["-e".to_owned(), format!("{k}={v}")])
        .collect()
}

#[test]
fn the_inspector_lists_and_calls_tools_over_stdio_and_http() {
    let Some(tools) = node_tools() else { return };
    let p = app();
    let env = env_args(&p);
    let stdio = |extra: &[&str]| {
        let mut args: Vec<&str> = env.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-q", bgtask_bin(), "mcp"]);
        inspector(&p, &tools, &args)
    };
    let (code, listed, said) = stdio(&["--method", "tools/list"]);
    assert_eq!(code, 0, "{said}");
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"run_analysis") && names.contains(&"explain_finding"),
        "{names:?}"
    );
    let (code, called, said) = stdio(&[
        "--method",
        "tools/call",
        "--tool-name",
        "run_analysis",
        "--tool-args-json",
        r#"{"tasks":["bandit"],"scope":"project"}"#,
    ]);
    assert_eq!(code, 0, "{said}");
    assert!(
        called["structuredContent"]["findings"]
            .as_array()
            .unwrap()
            .len()
            > 1,
        "{called}"
    );
    // A tool that fails is a tool error, which the inspector reports as such.
    let (code, _, said) = stdio(&["--method", "tools/call", "--tool-name", "status"]);
    assert_eq!(code, 5, "the daemon is down: {said}");
    assert!(said.contains("not running"), "{said}");

    p.start();
    let d = Dashboard::start(&p);
    let url = format!("{}/mcp", d.url);
    let auth = format!("Authorization: Bearer {}", d.token);
    let (code, listed, said) = inspector(
        &p,
        &tools,
        &[&url, "-q", "--method", "tools/list", "--header", &auth],
    );
    assert_eq!(code, 0, "{said}");
    assert_eq!(
        listed["tools"].as_array().map(Vec::len),
        Some(names.len()),
        "{listed}"
    );
    let (code, called, said) = inspector(
        &p,
        &tools,
        &[
            &url,
            "-q",
            "--method",
            "tools/call",
            "--tool-name",
            "status",
            "--header",
            &auth,
        ],
    );
    assert_eq!(code, 0, "{said}");
    assert_eq!(
        called["structuredContent"]["pid"]
            .as_u64()
            .and_then(|x| u32::try_from(x).ok()),
        p.daemon_pid()
    );
    p.stop();
}

#[test]
fn the_conformance_suite_passes_every_scenario_it_can_on_http() {
    let Some(tools) = node_tools() else { return };
    let p = app();
    p.start();
    let d = Dashboard::start(&p);
    let node = tools.join("node/bin/node");
    let mut proxy = Command::new(&node)
        .arg(manifest_dir().join("tests/mcp/authproxy.mjs"))
        .arg(&d.url)
        .arg(&d.token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let proxy_url = serde_json::from_str::<Value>(&line).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let out_dir = p.path().join("conformance");
    let out = Command::new(&node)
        .arg(tools.join("@modelcontextprotocol/conformance/dist/index.js"))
        .args([
            "server",
            "--url",
            &format!("{proxy_url}/mcp"),
            "--expected-failures",
        ])
        .arg(manifest_dir().join("tests/mcp/conformance-expected.yml"))
        .arg("-o")
        .arg(&out_dir)
        .env("HOME", p.path())
        .output()
        .unwrap();
    let _ = proxy.kill();
    let _ = proxy.wait();
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "conformance: {said}");
    for scenario in [
        "server-initialize",
        "ping",
        "tools-list",
        "resources-list",
        "prompts-list",
        "dns-rebinding-protection",
    ] {
        assert!(said.contains(scenario), "{scenario} was not run: {said}");
    }
    p.stop();
}
