//! The JSON schema of `.background-tasks.json`, generated from the raw types.
//!
//! Committed as `schema/background-tasks.schema.json`; a test fails when the
//! committed file drifts from what the types generate.

use super::raw::RawConfig;

/// The schema as pretty-printed JSON with a trailing newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawConfig);
    let mut out = serde_json::to_string_pretty(&schema).expect("schema serializes");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn committed_schema_matches_the_types() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/background-tasks.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = super::schema_json();
        if std::env::var_os("BGTASK_UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        assert!(
            committed == generated,
            "schema/background-tasks.schema.json is out of date: run `bgtask config schema > schema/background-tasks.schema.json` (or BGTASK_UPDATE_SCHEMA=1 cargo test schema)"
        );
    }
}
