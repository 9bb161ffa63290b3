//! The snippets of the integration guides in `docs/`, read by the tests that prove them, so a
//! guide and its test cannot drift apart. A snippet is the fenced code block that follows an
//! HTML comment `<!-- snippet: NAME -->` in the guide.

use crate::root;

/// The text of snippet `name` in `docs/FILE`; the test fails when it is missing.
pub fn snippet(file: &str, name: &str) -> String {
    let path = root().join("docs").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let marker = format!("<!-- snippet: {name} -->");
    let after = text
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{}: no {marker}", path.display()))
        .1;
    let fence_start = after
        .find("```")
        .unwrap_or_else(|| panic!("{}: no code block after {marker}", path.display()));
    let body = &after[fence_start + 3..];
    let body = body
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let end = body
        .find("\n```")
        .unwrap_or_else(|| panic!("{}: code block after {marker} not closed", path.display()));
    body[..end + 1].to_string()
}

/// `snippet` with each `(from, to)` replaced; fails when a `from` does not occur, so a test
/// never silently runs a snippet other than the one it meant to adapt.
pub fn adapted(file: &str, name: &str, replacements: &[(&str, &str)]) -> String {
    let mut s = snippet(file, name);
    for (from, to) in replacements {
        assert!(
            s.contains(from),
            "docs/{file} snippet {name}: {from:?} not found in:\n{s}"
        );
        s = s.replace(from, to);
    }
    s
}
