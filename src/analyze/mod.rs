//! Analyzers: definitions, the finding model, and reading what tools say.
//!
//! Owns everything between "a tool exited" and "these are its findings and
//! this is its status": the typed analyzer definition, one parser per report
//! format, the exit-code + output classification, and the built-in `profile`
//! analyzer; a finding's identity across edits and matching findings with a
//! baseline's (`identity.rs`, with `scope.rs` for enclosing scopes); and
//! afterwards, explaining a finding (its rule's documentation, the tool's
//! fix, the flagged lines in context). Running processes is
//! `run/`'s job; choosing files and caching is `engine/`'s.

pub mod classify;
mod definition;
mod explain;
mod finding;
pub mod identity;
#[cfg(test)]
mod identity_tests;
pub mod parsers;
pub mod profile;
mod rule_doc;
mod scope;
mod status;
pub mod vocabulary;

pub use definition::{
    AnalyzerDef, Engine, ExitClass, ExitCodes, ExternalSpec, Install, LazyRegex, RegexSpec,
    Thresholds,
};
pub use explain::{DOC_TIMEOUT, Explanation, MAX_CONTEXT_LINES, SourceLine, explain};
pub use finding::{Finding, Location, Package, Severity, sort_findings};
pub use identity::Identity;
pub use parsers::TestCounts;
pub use rule_doc::{RuleDoc, rule_doc};
pub use status::RunStatus;
