//! The agent's structure, checked (issue 16): its top-level modules import each other without a
//! circle, `config` imports nothing of the agent, and only `store/` holds SQL. Drawn from the
//! `crate::` paths in non-test code, so a change that reaches back up fails here, not in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("agent/src is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without line comments and without `#[cfg(test)] mod … { … }` blocks.
fn non_test_code(src: &str) -> String {
    let no_comments: String = src
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = no_comments.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let is_mod = after["#[cfg(test)]".len()..]
            .trim_start()
            .starts_with("mod ");
        let Some(open) = after.find(['{', ';']) else {
            rest = "";
            break;
        };
        if !is_mod || after.as_bytes()[open] == b';' {
            // A test-only item or `mod tests;` (its own file, skipped by name).
            out.push_str("#[cfg(test)]");
            rest = &after["#[cfg(test)]".len()..];
            continue;
        }
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The files of modules declared `#[cfg(test)] mod name;` (as paths without `.rs`: the file is
/// `name.rs` beside them, or the folder `name/`).
fn test_only_modules(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![];
    for f in files {
        let src = std::fs::read_to_string(f).expect("source is readable");
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let dir = f.parent().expect("a file has a folder");
        // A module's children live in its folder: `x.rs` → `x/`, `mod.rs` or `lib.rs` → beside it.
        let children = if stem == "mod" || stem == "lib" || stem == "main" {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        };
        let mut rest = src.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let decl = rest.trim_start();
            let decl = decl.strip_prefix("pub(crate) ").unwrap_or(decl);
            if let Some(m) = decl.strip_prefix("mod ") {
                let name: String = m
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if m[name.len()..].trim_start().starts_with(';') {
                    out.push(children.join(name));
                }
            }
        }
    }
    out
}

/// Top-level module → the top-level modules its non-test code names through `crate::`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = vec![];
    rust_files(src, &mut files);
    let test_only = test_only_modules(&files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(src).expect("under src");
        if test_only
            .iter()
            .any(|t| f.starts_with(t) || f == &t.with_extension("rs"))
        {
            continue;
        }
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let code = non_test_code(&std::fs::read_to_string(f).expect("source is readable"));
        let deps = g.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let m: String = code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if m != top {
                deps.insert(m);
            }
        }
    }
    let names: BTreeSet<String> = g.keys().cloned().collect();
    for deps in g.values_mut() {
        deps.retain(|d| names.contains(d));
    }
    g
}

/// Whether `to` can be reached from `from`.
fn reaches(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for d in g.get(&m).into_iter().flatten() {
            if d == to {
                return true;
            }
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    false
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_agents_modules_import_each_other_without_a_circle() {
    let g = graph(&src());
    assert!(g.len() >= 15, "the graph was read: {g:?}");
    let circles: Vec<(String, String)> = g
        .iter()
        .flat_map(|(m, deps)| deps.iter().map(move |d| (m.clone(), d.clone())))
        .filter(|(m, d)| reaches(&g, d, m))
        .collect();
    assert!(
        circles.is_empty(),
        "imports that close a circle: {circles:?}"
    );
    assert!(g["config"].is_empty(), "config imports {:?}", g["config"]);
    let store_may: BTreeSet<String> = ["config", "klarna"].map(String::from).into();
    assert!(
        g["store"].is_subset(&store_may),
        "store imports {:?}",
        g["store"]
    );
}

#[test]
fn only_the_store_holds_sql() {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let store = src().join("store");
    let outside: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(&store))
        .filter(|f| {
            let code = std::fs::read_to_string(f).expect("source is readable");
            ["SELECT ", "INSERT INTO", "DELETE FROM", "rusqlite"]
                .iter()
                .any(|s| code.contains(s))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(outside.is_empty(), "SQL outside store/: {outside:?}");
}

#[test]
fn a_circle_would_be_found() {
    // The check itself: a module naming one that names it back is a circle.
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("a.rs"), "use crate::b::X;").unwrap();
    std::fs::write(
        dir.path().join("b.rs"),
        "use crate::a::Y;\n#[cfg(test)]\nmod tests { use crate::c::Z; }",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.rs"), "// crate::a in a comment\n").unwrap();
    let g = graph(dir.path());
    assert!(reaches(&g, "a", "a"));
    assert!(
        !reaches(&g, "c", "a"),
        "comments and test modules do not count: {g:?}"
    );
    assert!(!g["b"].contains("c"), "{g:?}");
}
