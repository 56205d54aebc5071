//! The layering the README promises, checked on the source tree: only `src/store/` speaks
//! SQL, and the README's Layout section names every module and folder there is.

mod common;
use common::{repo, rust_files};

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

/// The README's Layout block.
fn layout_block() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme.split("## Layout\n").nth(1).expect("a Layout section");
    let block = section.split("```").nth(1).expect("a code block in the Layout section");
    block.to_string()
}

#[test]
fn the_readme_layout_names_every_module_and_folder_and_nothing_else() {
    let layout = layout_block();
    // Paths it names: the first word of every line that names one.
    let named: Vec<String> = layout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.contains('/') || w.ends_with(".rs"))
        .flat_map(|w| w.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let mut missing = Vec::new();
    for e in std::fs::read_dir(repo().join("src")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if e.path().is_dir() { format!("src/{name}/") } else { format!("src/{name}") };
        if !layout.contains(&path) {
            missing.push(path);
        }
    }
    for dir in ["migrations", "config", "dashboards", "deploy", "scripts", "tests", "benches"] {
        if !named.iter().any(|n| n == &format!("{dir}/")) {
            missing.push(format!("{dir}/"));
        }
    }
    assert!(missing.is_empty(), "the README's Layout does not name: {missing:?}");
    let stale: Vec<&String> = named.iter().filter(|n| !repo().join(n.trim_end_matches('/')).exists()).collect();
    assert!(stale.is_empty(), "the README's Layout names what does not exist: {stale:?}");
}
