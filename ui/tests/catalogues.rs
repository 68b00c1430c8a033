//! Every text the screens mark with `@tr` has a Swedish and a German translation, and no
//! catalogue keeps a text the screens no longer say: a missing entry would show English
//! in the middle of a Swedish screen without anyone noticing.

use std::collections::BTreeSet;
use std::path::Path;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The first argument of every `@tr("...")` in the `.slint` files.
fn texts_on_screens() -> BTreeSet<String> {
    let mut texts = BTreeSet::new();
    let dir = manifest_dir().join("ui");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("ui/ui exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slint"))
        .collect();
    files.sort();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("a .slint file reads");
        for (at, opening) in source.match_indices("@tr(\"") {
            let rest = &source[at + opening.len()..];
            let end = rest.find('"').expect("@tr strings are closed");
            texts.insert(rest[..end].to_string());
        }
    }
    texts
}

/// msgid → msgstr of a catalogue (single-line entries, as ours are written).
fn catalogue(language: &str) -> Vec<(String, String)> {
    let path = manifest_dir().join(format!("lang/{language}/LC_MESSAGES/kassa-ui.po"));
    let text = std::fs::read_to_string(&path).expect("the catalogue reads");
    let unquote = |line: &str, key: &str| {
        line.strip_prefix(key)
            .and_then(|r| r.trim().strip_prefix('"'))
            .and_then(|r| r.strip_suffix('"'))
            .map(|r| r.replace("\\\"", "\"").replace("\\\\", "\\"))
    };
    let mut entries = Vec::new();
    let mut id = None;
    for line in text.lines() {
        if let Some(m) = unquote(line, "msgid ") {
            id = Some(m);
        } else if let (Some(s), Some(i)) = (unquote(line, "msgstr "), id.take())
            && !i.is_empty()
        {
            entries.push((i, s));
        }
    }
    entries
}

#[test]
fn every_screen_text_is_translated_into_swedish_and_german() {
    let texts = texts_on_screens();
    assert!(texts.contains("Pay with Klarna"));
    for language in ["sv", "de"] {
        let entries = catalogue(language);
        let ids: BTreeSet<String> = entries.iter().map(|(i, _)| i.clone()).collect();
        let missing: Vec<_> = texts.difference(&ids).collect();
        assert!(missing.is_empty(), "{language} lacks {missing:?}");
        let stale: Vec<_> = ids.difference(&texts).collect();
        assert!(
            stale.is_empty(),
            "{language} keeps texts no screen says: {stale:?}"
        );
        for (id, translation) in &entries {
            assert!(
                !translation.is_empty(),
                "{language}: {id:?} is untranslated"
            );
            assert_eq!(
                id.matches("{}").count(),
                translation.matches("{}").count(),
                "{language}: {id:?} and its translation fill in the same values"
            );
        }
    }
}
