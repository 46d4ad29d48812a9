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
use lsp_types::request::{DocumentDiagnosticRequest, Request as _, WorkspaceDiagnosticRefresh};
use lsp_types::{
    Diagnostic, DiagnosticOptions, DiagnosticServerCapabilities, DocumentDiagnosticParams,
    DocumentDiagnosticReport, DocumentDiagnosticReportResult, FullDocumentDiagnosticReport,
    PublishDiagnosticsParams, RelatedFullDocumentDiagnosticReport, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};
use tracing::{debug, warn};

use super::{diagnostics, uri};
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
    saved: String,
    /// The diagnostics last published (push mode).
    published: Option<Vec<Diagnostic>>,
}

impl Doc {
    /// Reads the document's findings again, and the file they are against.
    fn reload(&mut self, root: &Path, store: Option<&Store>) {
        self.findings = findings(root, store, self.uri.as_str());
        self.saved = saved(root, &self.uri).unwrap_or_else(|| self.text.clone());
    }

    fn diagnostics(&self, root: &Path) -> Vec<Diagnostic> {
        diagnostics::diagnostics(root, &self.findings, &self.saved, &self.text)
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

/// The server: one worktree, its open documents, the way out to the editor.
pub struct Server {
    root: PathBuf,
    mode: Mode,
    out: Sender<Message>,
    docs: HashMap<String, Doc>,
    next_id: i32,
}

impl Server {
    pub fn new(root: PathBuf, mode: Mode, out: Sender<Message>) -> Server {
        Server {
            root,
            mode,
            out,
            docs: HashMap::new(),
            next_id: 0,
        }
    }

    fn send(&self, message: impl Into<Message>) {
        // The transport is gone only when the editor is: the main loop
        // ends on its own then.
        let _ = self.out.send(message.into());
    }

    pub fn request(&mut self, req: Request) {
        if req.method == DocumentDiagnosticRequest::METHOD {
            let answer = match serde_json::from_value::<DocumentDiagnosticParams>(req.params) {
                Ok(p) => Response::new_ok(req.id, self.pulled(&p.text_document.uri)),
                Err(e) => invalid(req.id, &e),
            };
            self.send(answer);
        } else {
            self.send(Response::new_err(
                req.id,
                ErrorCode::MethodNotFound as i32,
                format!("bgtask does not answer {}", req.method),
            ));
        }
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
                    saved: String::new(),
                    published: None,
                };
                doc.reload(&self.root, open_store(&self.root).as_ref());
                self.docs.insert(opened.uri.as_str().to_owned(), doc);
                self.publish(opened.uri.as_str());
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

    /// Runs finished: the open documents' diagnostics again (push), or
    /// the editor asked to pull them again (pull).
    pub fn runs_changed(&mut self) {
        match self.mode {
            Mode::Push => {
                let store = open_store(&self.root);
                for doc in self.docs.values_mut() {
                    doc.reload(&self.root, store.as_ref());
                }
                let uris: Vec<String> = self.docs.keys().cloned().collect();
                for uri in uris {
                    self.publish(&uri);
                }
            }
            Mode::Pull => {
                let store = open_store(&self.root);
                for doc in self.docs.values_mut() {
                    doc.reload(&self.root, store.as_ref());
                }
                self.next_id += 1;
                self.send(Request::new(
                    RequestId::from(self.next_id),
                    WorkspaceDiagnosticRefresh::METHOD.to_owned(),
                    (),
                ));
            }
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
        let now = doc.diagnostics(&self.root);
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
            doc.diagnostics(&self.root)
        } else {
            let store = open_store(&self.root);
            let found = findings(&self.root, store.as_ref(), uri.as_str());
            let text = saved(&self.root, uri).unwrap_or_default();
            diagnostics::diagnostics(&self.root, &found, &text, &text)
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

/// The worktree's store, read-only; `None` before the first run (no
/// database yet) or when it cannot be read.
pub fn open_store(root: &Path) -> Option<Store> {
    let db = root.join(".bgtask").join(crate::store::FILE);
    if !db.exists() {
        return None;
    }
    Store::open_read_only(&db)
        .map_err(|e| warn!(db = %db.display(), error = %e, "cannot read the findings"))
        .ok()
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
        (dir, Server::new(root, mode, tx), rx)
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
