//! SECURITY.md backs each claim with the test that shows it; this keeps those citations true. A
//! renamed or deleted test fails here instead of leaving the threat model pointing at nothing.

use std::path::Path;

/// The `path::test` citations of SECURITY.md: (file, test name), or (file, None) for a whole file;
/// the example gateway's tests are under `examples/gateway/tests/`.
fn citations(text: &str) -> Vec<(String, Option<String>)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            ["tests/", "src/", "examples/"]
                .iter()
                .any(|root| quoted.starts_with(root))
        })
        .filter(|quoted| !quoted.contains('<'))
        .map(|quoted| match quoted.split_once("::") {
            Some((file, path)) => {
                let test = path.rsplit("::").next().unwrap_or(path);
                (file.to_owned(), Some(test.to_owned()))
            }
            None => (quoted.to_owned(), None),
        })
        .collect()
}

#[test]
fn every_test_security_md_cites_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let security = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let citations = citations(&security);
    assert!(citations.len() > 20, "SECURITY.md cites its tests");

    let missing: Vec<String> = citations
        .iter()
        .filter(|(file, test)| {
            let Ok(source) = std::fs::read_to_string(root.join(file)) else {
                return true;
            };
            // A test, or a generic conformance case that tests/it/stores.rs runs on every store.
            test.as_ref().is_some_and(|test| {
                !source.contains(&format!("fn {test}(")) && !source.contains(&format!("fn {test}<"))
            })
        })
        .map(|(file, test)| format!("{file}::{}", test.as_deref().unwrap_or("")))
        .collect();
    assert!(
        missing.is_empty(),
        "SECURITY.md cites tests that do not exist: {missing:#?}"
    );
}
