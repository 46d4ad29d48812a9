//! Configuration: `.background-tasks.json` (+ `.background-tasks.local.json`)
//! and analyzer definitions, parsed in two phases.
//!
//! Phase 1 (`load.rs`, `source.rs`) reads the files strictly, locates every
//! value, merges the local file over the repo one and deserializes the raw
//! mirror (`raw.rs`) section by section. Phase 2 (`validate.rs`,
//! `analyzer.rs`) checks meaning and builds the typed [`Config`]. Both phases
//! report every problem at once with file, line:column and JSON pointer.
//! Nothing outside this module sees the raw types.

mod analyzer;
mod edit;
mod error;
mod issues;
mod load;
mod model;
mod projects;
pub mod raw;
mod schema;
mod source;
pub mod tasks;
mod validate;

use std::path::Path;

pub use analyzer::BUILTIN as BUILTIN_ANALYZERS;
pub use edit::{EditError, Edited, TaskEdit, edit_task};
pub use error::{ConfigError, Problem};
pub use load::{CONFIG_FILE, DEFAULT_CONFIG, LOCAL_CONFIG_FILE, MAX_CONFIG_BYTES, refused};
pub use model::*;
pub use projects::{Project, Projects, names_nested_config};
pub use schema::schema_json;

/// Loads the config of the worktree at `root`: the repo config (or the
/// built-in default when there is none) with the local overrides merged over
/// it.
pub fn load(root: &Path) -> Result<Config, ConfigError> {
    let layers = load::Layers::read(root)?;
    build(&layers)
}

/// Validates config text as if it were the repo config (no local overrides).
pub fn from_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let layers = load::Layers::from_text(path, text)?;
    build(&layers)
}

fn build(layers: &load::Layers) -> Result<Config, ConfigError> {
    let (raw, mut problems) = load::to_raw(layers);
    match validate::validate(layers, raw) {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(invalid(problems)),
        Err(more) => {
            problems.extend(more);
            Err(invalid(problems))
        }
    }
}

/// Problems in file order, as a reader goes through them.
fn invalid(mut problems: Vec<Problem>) -> ConfigError {
    problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    ConfigError::Invalid { problems }
}
