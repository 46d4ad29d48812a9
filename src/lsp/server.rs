//! The language server's state and its answers: which worktree, how the
//! editor takes diagnostics (pushed, or pulled with refreshes), the open
//! documents (version, current text, their findings and the saved text
//! they were read against), and the diagnostics each has.
//! Synchronous: one thread handles the editor's messages and the daemon's
//! changes (`follow.rs`) in turn; stdout is the transport's alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;
use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    CodeActionRequest, DocumentDiagnosticRequest, ExecuteCommand, Request as _, ShowDocument,
    WorkspaceDiagnosticRefresh,
};
use lsp_types::{
    CodeActionParams, CodeActionProviderCapability, Diagnostic, DiagnosticOptions,
    DiagnosticServerCapabilities, DocumentDiagnosticParams, DocumentDiagnosticReport,
    DocumentDiagnosticReportResult, ExecuteCommandOptions, ExecuteCommandParams,
    FullDocumentDiagnosticReport, MessageType, PublishDiagnosticsParams,
    RelatedFullDocumentDiagnosticReport, ServerCapabilities, ShowDocumentParams, ShowMessageParams,
    TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};
use tracing::{debug, warn};

use super::accepted::Accepted;
use super::actions::{self, Done};
use super::diagnostics::{self, Baseline};
use super::{opened, uri};
use crate::store::{CurrentFinding, Store};

/// How the editor takes diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `textDocument/publishDiagnostics`, sent when they change.
    Push,
    /// `textDocument/diagnostic` (LSP 3.17), asked by the editor, which
    /// is told to ask again (`workspace/diagnostic/refresh`) when runs
    /// finish.
    Pull,
}

impl Mode {
    /// Pull when the editor both pulls and takes refreshes: without
    /// refreshes a pulling editor would not hear of finished runs. Read
    /// from the raw capabilities: the spec's `workspace.diagnostics` is
    /// `workspace.diagnostic` in `lsp-types`, so both spellings count.
    pub fn for_client(caps: &serde_json::Value) -> Mode {
        let pulls = caps["textDocument"]["diagnostic"].is_object();
        let refreshes = ["diagnostics", "diagnostic"]
            .iter()
            .any(|k| caps["workspace"][k]["refreshSupport"] == true);
        if pulls && refreshes {
            Mode::Pull
        } else {
            Mode::Push
        }
    }
}

/// What the server tells the editor it does, for `mode`.
pub fn capabilities(mode: Mode) -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: actions::commands(),
            ..ExecuteCommandOptions::default()
        }),
        diagnostic_provider: (mode == Mode::Pull).then(|| {
            DiagnosticServerCapabilities::Options(DiagnosticOptions {
                identifier: Some("bgtask".into()),
                inter_file_dependencies: false,
                workspace_diagnostics: false,
                ..DiagnosticOptions::default()
            })
        }),
        ..ServerCapabilities::default()
    }
}

/// An open document.
struct Doc {
    uri: Uri,
    version: i32,
    text: String,
    /// Its current findings, read when the file on disk was `saved`.
    findings: Vec<CurrentFinding>,
    /// For each finding, whether the baseline accepted it.
    accepted: Vec<bool>,
    saved: String,
    /// The diagnostics last published (push mode).
    published: Option<Vec<Diagnostic>>,
}

impl Doc {
    /// Reads the document's findings again, and the file they are against.
    fn reload(&mut self, root: &Path, store: Option<&Store>, accepted: &Accepted) {
        self.findings = findings(root, store, self.uri.as_str());
        self.accepted = match uri::relative(root, self.uri.as_str()) {
            Some(path) => accepted.marks(&path, &self.findings),
            None => Vec::new(),
        };
        self.saved = saved(root, &self.uri).unwrap_or_else(|| self.text.clone());
    }

    fn diagnostics(&self, root: &Path, accepted: &Accepted) -> Vec<Diagnostic> {
        let baseline = if accepted.exists() {
            Baseline::Marks(&self.accepted)
        } else {
            Baseline::None
        };
        diagnostics::diagnostics(root, &self.findings, baseline, &self.saved, &self.text)
    }
}

/// Most bytes of a file read from disk (as `bgtask explain` reads sources).
const SOURCE_CAP: u64 = 4 * 1024 * 1024;

/// The file at `uri` as it is on disk: a regular file of the worktree at
/// `root`, read without blocking or following a link out of it.
fn saved(root: &Path, uri: &Uri) -> Option<String> {
    let path = uri::to_path(uri.as_str())?;
    crate::repofile::read_to_string(Some(root), &path, SOURCE_CAP)
        .ok()
        .flatten()
}

/// What the editor asked for and can do, from `initialize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub mode: Mode,
    /// Ask the daemon to analyse an opened file no run has looked at
    /// (`initializationOptions.analyzeOnOpen`, on unless `false`).
    pub analyze_on_open: bool,
    /// It opens pages on `window/showDocument`.
    pub shows_documents: bool,
}

impl Client {
    pub fn from_initialize(params: &serde_json::Value) -> Client {
        let caps = &params["capabilities"];
        Client {
            mode: Mode::for_client(caps),
            analyze_on_open: params["initializationOptions"]["analyzeOnOpen"] != false,
            shows_documents: caps["window"]["showDocument"]["support"] == true,
        }
    }
}

/// The server: one worktree, its open documents, the way out to the editor.
pub struct Server {
    root: PathBuf,
    mode: Mode,
    client: Client,
    out: Sender<Message>,
    docs: HashMap<String, Doc>,
    accepted: Accepted,
    /// Files the daemon was asked to analyse on opening (once each).
    asked: std::collections::HashSet<String>,
    next_id: i32,
}

impl Server {
    pub fn new(root: PathBuf, client: Client, out: Sender<Message>) -> Server {
        Server {
            root,
            mode: client.mode,
            client,
            out,
            docs: HashMap::new(),
            accepted: Accepted::default(),
            asked: std::collections::HashSet::new(),
            next_id: 0,
        }
    }

    /// Reads the baseline again if it changed; a broken one is said.
    fn refresh_baseline(&mut self) {
        if let Some(problem) = self.accepted.refresh(&self.root) {
            self.say(MessageType::WARNING, problem);
        }
    }

    fn say(&self, typ: MessageType, message: String) {
        self.send(Notification::new(
            "window/showMessage".to_owned(),
            ShowMessageParams { typ, message },
        ));
    }

    fn request_editor<P: serde::Serialize>(&mut self, method: &str, params: P) {
        self.next_id += 1;
        self.send(Request::new(
            RequestId::from(self.next_id),
            method.to_owned(),
            params,
        ));
    }

    fn send(&self, message: impl Into<Message>) {
        // The transport is gone only when the editor is: the main loop
        // ends on its own then.
        let _ = self.out.send(message.into());
    }

    pub fn request(&mut self, req: Request) {
        let answer = match req.method.as_str() {
            DocumentDiagnosticRequest::METHOD => {
                self.refresh_baseline();
                match serde_json::from_value::<DocumentDiagnosticParams>(req.params) {
                    Ok(p) => Response::new_ok(req.id, self.pulled(&p.text_document.uri)),
                    Err(e) => invalid(req.id, &e),
                }
            }
            CodeActionRequest::METHOD => {
                match serde_json::from_value::<CodeActionParams>(req.params) {
                    Ok(p) => {
                        Response::new_ok(req.id, actions::for_diagnostics(&p.context.diagnostics))
                    }
                    Err(e) => invalid(req.id, &e),
                }
            }
            ExecuteCommand::METHOD => {
                match serde_json::from_value::<ExecuteCommandParams>(req.params) {
                    Ok(p) => self.execute(req.id, &p),
                    Err(e) => invalid(req.id, &e),
                }
            }
            _ => Response::new_err(
                req.id,
                ErrorCode::MethodNotFound as i32,
                format!("bgtask does not answer {}", req.method),
            ),
        };
        self.send(answer);
    }

    /// Runs a code action's command; the editor hears what it did.
    fn execute(&mut self, id: RequestId, p: &ExecuteCommandParams) -> Response {
        let store = open_store(&self.root);
        match actions::execute(&self.root, store.as_ref(), &p.command, &p.arguments) {
            Ok(Done::Accepted(said)) => {
                self.say(MessageType::INFO, said);
                self.runs_changed();
            }
            Ok(Done::Open { url, note }) => {
                if let Some(note) = note {
                    self.say(MessageType::INFO, note);
                }
                if self.client.shows_documents {
                    let uri: Option<Uri> = url.parse().ok();
                    self.request_editor(
                        ShowDocument::METHOD,
                        ShowDocumentParams {
                            uri: uri.unwrap_or_else(|| "about:blank".parse().expect("a URI")),
                            external: Some(true),
                            take_focus: Some(true),
                            selection: None,
                        },
                    );
                } else {
                    self.say(MessageType::INFO, format!("open {url}"));
                }
            }
            Err(message) => {
                return Response::new_err(id, ErrorCode::RequestFailed as i32, message);
            }
        }
        Response::new_ok(id, serde_json::Value::Null)
    }

    pub fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidOpenTextDocumentParams>(n) else {
                    return;
                };
                let opened = p.text_document;
                let mut doc = Doc {
                    uri: opened.uri.clone(),
                    version: opened.version,
                    text: opened.text,
                    findings: Vec::new(),
                    accepted: Vec::new(),
                    saved: String::new(),
                    published: None,
                };
                self.refresh_baseline();
                let store = open_store(&self.root);
                doc.reload(&self.root, store.as_ref(), &self.accepted);
                self.docs.insert(opened.uri.as_str().to_owned(), doc);
                self.publish(opened.uri.as_str());
                self.analyse_if_new(opened.uri.as_str(), store.as_ref());
            }
            DidChangeTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidChangeTextDocumentParams>(n) else {
                    return;
                };
                let Some(doc) = self.docs.get_mut(p.text_document.uri.as_str()) else {
                    return;
                };
                doc.version = p.text_document.version;
                // Full sync: the last change is the whole text.
                if let Some(change) = p.content_changes.into_iter().next_back() {
                    doc.text = change.text;
                }
                self.publish(p.text_document.uri.as_str());
            }
            DidCloseTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidCloseTextDocumentParams>(n) else {
                    return;
                };
                let closed = self.docs.remove(p.text_document.uri.as_str());
                if let (Some(doc), Mode::Push) = (closed, self.mode) {
                    self.send(published(doc.uri, Vec::new(), None));
                }
            }
            _ => debug!(method = %n.method, "notification ignored"),
        }
    }

    /// An opened file no run has looked at: the daemon is asked to
    /// analyse it (as if saved), once, when the editor allows.
    fn analyse_if_new(&mut self, uri: &str, store: Option<&Store>) {
        if !self.client.analyze_on_open {
            return;
        }
        let Some(path) = uri::relative(&self.root, uri) else {
            return;
        };
        let seen = store.is_some_and(|s| s.looked_at(&path).unwrap_or(true));
        if seen || !self.asked.insert(path.clone()) {
            return;
        }
        opened::ask_to_analyse(&self.root, path);
    }

    /// Runs finished (or the baseline changed): the open documents'
    /// diagnostics again (push), or the editor asked to pull them again
    /// (pull).
    pub fn runs_changed(&mut self) {
        self.refresh_baseline();
        let store = open_store(&self.root);
        for doc in self.docs.values_mut() {
            doc.reload(&self.root, store.as_ref(), &self.accepted);
        }
        match self.mode {
            Mode::Push => {
                let uris: Vec<String> = self.docs.keys().cloned().collect();
                for uri in uris {
                    self.publish(&uri);
                }
            }
            Mode::Pull => self.request_editor(WorkspaceDiagnosticRefresh::METHOD, ()),
        }
    }

    /// Publishes the open document's diagnostics when they changed (push
    /// mode).
    fn publish(&mut self, key: &str) {
        if self.mode != Mode::Push {
            return;
        }
        let Some(doc) = self.docs.get_mut(key) else {
            return;
        };
        let now = doc.diagnostics(&self.root, &self.accepted);
        if doc.published.as_ref() == Some(&now) {
            return;
        }
        doc.published = Some(now.clone());
        let message = published(doc.uri.clone(), now, Some(doc.version));
        self.send(message);
    }

    /// The answer to a pull: an open document's diagnostics in its
    /// current text, else the file's on disk.
    fn pulled(&self, uri: &Uri) -> DocumentDiagnosticReportResult {
        let items = if let Some(doc) = self.docs.get(uri.as_str()) {
            doc.diagnostics(&self.root, &self.accepted)
        } else {
            let store = open_store(&self.root);
            let found = findings(&self.root, store.as_ref(), uri.as_str());
            let text = saved(&self.root, uri).unwrap_or_default();
            let marks = uri::relative(&self.root, uri.as_str())
                .map(|p| self.accepted.marks(&p, &found))
                .unwrap_or_default();
            let baseline = if self.accepted.exists() {
                Baseline::Marks(&marks)
            } else {
                Baseline::None
            };
            diagnostics::diagnostics(&self.root, &found, baseline, &text, &text)
        };
        DocumentDiagnosticReportResult::Report(DocumentDiagnosticReport::Full(
            RelatedFullDocumentDiagnosticReport {
                related_documents: None,
                full_document_diagnostic_report: FullDocumentDiagnosticReport {
                    result_id: None,
                    items,
                },
            },
        ))
    }
}

fn published(uri: Uri, diagnostics: Vec<Diagnostic>, version: Option<i32>) -> Notification {
    Notification::new(
        PublishDiagnostics::METHOD.to_owned(),
        PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        },
    )
}

fn params<P: serde::de::DeserializeOwned>(n: Notification) -> Option<P> {
    serde_json::from_value(n.params)
        .map_err(|e| warn!(method = %n.method, error = %e, "malformed notification"))
        .ok()
}

fn invalid(id: RequestId, e: &serde_json::Error) -> Response {
    Response::new_err(id, ErrorCode::InvalidParams as i32, e.to_string())
}

/// The worktree's store, read-only; `None` before the first run.
pub fn open_store(root: &Path) -> Option<Store> {
    Store::of_worktree(root)
}

/// The current findings of the document at `uri`; none outside the
/// worktree.
fn findings(root: &Path, store: Option<&Store>, uri: &str) -> Vec<CurrentFinding> {
    let (Some(store), Some(path)) = (store, uri::relative(root, uri)) else {
        return Vec::new();
    };
    store
        .current_findings(&path)
        .map_err(|e| warn!(path = %path, error = %e, "cannot read the findings"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn the_editor_pulls_only_when_it_also_takes_refreshes() {
        let cases = [
            (json!({}), Mode::Push),
            (json!({"textDocument": {"diagnostic": {}}}), Mode::Push),
            (
                json!({"textDocument": {"diagnostic": {}},
                       "workspace": {"diagnostics": {"refreshSupport": false}}}),
                Mode::Push,
            ),
            (
                json!({"textDocument": {"diagnostic": {}},
                       "workspace": {"diagnostic": {"refreshSupport": true}}}),
                Mode::Pull,
            ),
            (
                json!({"textDocument": {"diagnostic": {}},
                       "workspace": {"diagnostics": {"refreshSupport": true}}}),
                Mode::Pull,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(Mode::for_client(&value), want, "{value}");
        }
        assert!(capabilities(Mode::Push).diagnostic_provider.is_none());
        assert!(capabilities(Mode::Pull).diagnostic_provider.is_some());
    }

    fn server(
        mode: Mode,
    ) -> (
        tempfile::TempDir,
        Server,
        crossbeam_channel::Receiver<Message>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let root = dir.path().canonicalize().unwrap();
        let client = Client {
            mode,
            analyze_on_open: false,
            shows_documents: false,
        };
        (dir, Server::new(root, client, tx), rx)
    }

    fn notify(server: &mut Server, method: &str, params: &Value) {
        server.notification(Notification::new(method.to_owned(), params.clone()));
    }

    fn sent(rx: &crossbeam_channel::Receiver<Message>) -> Vec<Value> {
        rx.try_iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .collect()
    }

    #[test]
    fn pushed_diagnostics_follow_open_and_close() {
        let (dir, mut s, rx) = server(Mode::Push);
        let uri = format!("file://{}/a.py", dir.path().display());
        let open = json!({"textDocument": {"uri": uri, "languageId": "python", "version": 3, "text": "x\n"}});
        notify(&mut s, DidOpenTextDocument::METHOD, &open);
        let msgs = sent(&rx);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert_eq!(msgs[0]["method"], PublishDiagnostics::METHOD);
        assert_eq!(msgs[0]["params"]["version"], 3);
        assert_eq!(msgs[0]["params"]["diagnostics"], json!([]));
        // Nothing changed: nothing sent again.
        s.runs_changed();
        assert!(sent(&rx).is_empty());
        notify(
            &mut s,
            DidCloseTextDocument::METHOD,
            &json!({"textDocument": {"uri": uri}}),
        );
        let msgs = sent(&rx);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert_eq!(msgs[0]["params"]["diagnostics"], json!([]));
        assert!(s.docs.is_empty());
    }

    #[test]
    fn a_pulling_editor_is_answered_and_asked_to_pull_again() {
        let (dir, mut s, rx) = server(Mode::Pull);
        let uri = format!("file://{}/a.py", dir.path().display());
        s.request(Request::new(
            RequestId::from(7),
            DocumentDiagnosticRequest::METHOD.to_owned(),
            json!({"textDocument": {"uri": uri}}),
        ));
        s.request(Request::new(
            RequestId::from(8),
            "textDocument/hover".to_owned(),
            json!({}),
        ));
        s.runs_changed();
        let msgs = sent(&rx);
        assert_eq!(msgs[0]["id"], 7);
        assert_eq!(msgs[0]["result"], json!({"kind": "full", "items": []}));
        assert_eq!(msgs[1]["id"], 8);
        assert_eq!(msgs[1]["error"]["code"], ErrorCode::MethodNotFound as i32);
        assert_eq!(msgs[2]["method"], WorkspaceDiagnosticRefresh::METHOD);
        assert_eq!(msgs.len(), 3, "{msgs:?}");
    }
}
