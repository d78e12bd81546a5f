//! The documentation is checked like code: every key the JSON Schema knows is explained in
//! `docs/reference.md`, every YAML example in `docs/` and in `README.md` validates with the real
//! binary, every shipped runbook has its page under `docs/runbooks/`, and every markdown file's
//! links resolve inside the repository (a clone has nothing outside it).
//!
//! Examples in markdown follow three rules:
//! - a ```` ```yaml ```` block is a whole runbook and must pass `runbook validate`;
//! - a block whose first line is `# file: PATH` is also written to `PATH` (relative, inside the
//!   page's examples folder), so that other examples of the same page can `call:` it;
//! - anything that is not a whole runbook is marked differently (```` ```yaml fragment ````,
//!   ```` ```text ````) and is not validated.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::run_support::Sandbox;

/// The repository's root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One fenced code block of a markdown page.
#[derive(Debug, PartialEq, Eq)]
struct Fence {
    /// The 1-based line of the opening fence.
    line: usize,
    /// What follows the opening backticks (`yaml`, `yaml fragment`, `sh`, …).
    info: String,
    /// The lines between the fences.
    body: String,
}

impl Fence {
    /// Whether the block is a whole runbook to validate.
    fn is_runbook(&self) -> bool {
        self.info == "yaml"
    }

    /// The path of a `# file: PATH` first line.
    fn file(&self) -> Option<&str> {
        self.body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# file:"))
            .map(str::trim)
    }
}

/// The fenced code blocks of a page (```` ``` ```` fences, at the start of a line or indented);
/// `Err` with the line of a fence that is never closed.
fn fences(text: &str) -> Result<Vec<Fence>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = line[..line.len() - trimmed.len()].to_owned();
                    open = Some((i + 1, info.trim().to_owned(), indent, String::new()));
                }
            }
            Some((start, info, indent, body)) => {
                if trimmed.starts_with("```") {
                    out.push(Fence {
                        line: *start,
                        info: std::mem::take(info),
                        body: std::mem::take(body),
                    });
                    open = None;
                } else {
                    body.push_str(line.strip_prefix(indent.as_str()).unwrap_or(line));
                    body.push('\n');
                }
            }
        }
    }
    match open {
        Some((line, ..)) => Err(line),
        None => Ok(out),
    }
}

/// The fenced code blocks of a page, which must all be closed.
fn page_fences(page: &Path) -> Vec<Fence> {
    let text = std::fs::read_to_string(page).expect("the page is readable");
    fences(&text)
        .unwrap_or_else(|line| panic!("{}:{line}: this code block is never closed", relative(page)))
}

/// Every markdown file of the repository, build output and hidden folders left out.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The pages whose examples are checked: `README.md` and everything under `docs/`.
fn documentation() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    markdown_files(&repo().join("docs"), &mut pages);
    pages
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every property name of every object schema, at any depth.
fn schema_keys(value: &serde_json::Value, keys: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                keys.extend(properties.keys().cloned());
            }
            for v in map.values() {
                schema_keys(v, keys);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                schema_keys(v, keys);
            }
        }
        _ => {}
    }
}

#[test]
fn every_key_the_schema_knows_is_in_the_reference() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/runbook.schema.json"))
            .expect("the schema is checked in"),
    )
    .expect("the schema is JSON");
    let mut keys = BTreeSet::new();
    schema_keys(&schema, &mut keys);
    for known in [
        "steps",
        "for_each",
        "max_failures",
        "identity_file",
        "backoff",
    ] {
        assert!(keys.contains(known), "the walk finds `{known}`: {keys:?}");
    }
    let reference =
        std::fs::read_to_string(repo().join("docs/reference.md")).expect("docs/reference.md");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !reference.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/reference.md never names these schema keys as `key`: {missing:?}"
    );
}

/// Validates a page's runbook examples in a folder of their own; returns how many there were.
fn validate_examples(page: &Path) -> usize {
    let blocks: Vec<Fence> = page_fences(page)
        .into_iter()
        .filter(Fence::is_runbook)
        .collect();
    if blocks.is_empty() {
        return 0;
    }
    let sb = Sandbox::with_prefix("runbook-docs-");
    let mut named = BTreeSet::new();
    let mut files = Vec::new();
    for block in &blocks {
        let name = match block.file() {
            Some(path) => {
                assert!(
                    Path::new(path)
                        .components()
                        .all(|c| matches!(c, Component::Normal(_))),
                    "{}:{}: `# file: {path}` must be a relative path inside the examples folder",
                    relative(page),
                    block.line
                );
                assert!(
                    named.insert(path.to_owned()),
                    "{}:{}: a second example claims `# file: {path}`",
                    relative(page),
                    block.line
                );
                path.to_owned()
            }
            None => format!("line-{}.yaml", block.line),
        };
        sb.write(&name, &block.body);
        files.push(name);
    }
    let mut args = vec!["validate".to_owned()];
    args.extend(files.iter().cloned());
    let output = sb.command(&args).output().expect("runbook starts");
    assert!(
        output.status.success(),
        "an example in {page} does not validate (`line-N.yaml` is the block at line N of the page):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        page = relative(page),
    );
    blocks.len()
}

#[test]
fn every_yaml_example_in_the_docs_and_the_readme_validates() {
    let mut counts = Vec::new();
    for page in documentation() {
        counts.push((relative(&page), validate_examples(&page)));
    }
    let count_of = |name: &str| {
        counts
            .iter()
            .find(|(page, _)| page == name)
            .map_or(0, |(_, n)| *n)
    };
    assert!(
        count_of("docs/reference.md") >= 30,
        "the reference shows its language by example: {counts:?}"
    );
    assert!(count_of("README.md") >= 2, "{counts:?}");
    assert!(count_of("docs/tutorial.md") >= 2, "{counts:?}");
}

#[test]
fn every_shipped_runbook_has_a_page_that_links_it() {
    let mut pages = 0;
    for system in std::fs::read_dir(repo().join("runbooks"))
        .expect("runbooks/")
        .flatten()
    {
        if !system.path().is_dir() {
            continue;
        }
        let system_name = system.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(system.path())
            .expect("a folder")
            .flatten()
        {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let page = repo().join(format!("docs/runbooks/{system_name}-{stem}.md"));
            let text = std::fs::read_to_string(&page)
                .unwrap_or_else(|_| panic!("{} has no page {}", relative(&path), relative(&page)));
            let link = format!("../../runbooks/{system_name}/{stem}.yaml");
            assert!(
                text.contains(&link),
                "{} does not link {link}",
                relative(&page)
            );
            pages += 1;
        }
    }
    assert!(pages >= 16, "{pages} runbooks found");
}

#[test]
fn fences_are_read_with_their_kind_line_and_file() {
    let page = "text\n```yaml\n# file: lib/part.yaml\nname: part\n```\n\n  ```yaml fragment\n  when: x\n  ```\n```sh\nls\n```\n";
    let found = fences(page).expect("every block is closed");
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0].line, 2);
    assert!(found[0].is_runbook());
    assert_eq!(found[0].file(), Some("lib/part.yaml"));
    assert_eq!(found[0].body, "# file: lib/part.yaml\nname: part\n");
    assert!(!found[1].is_runbook(), "a fragment is not validated");
    assert_eq!(
        found[1].body, "when: x\n",
        "indentation of the fence removed"
    );
    assert!(!found[2].is_runbook());
    assert_eq!(found[2].file(), None);
    assert_eq!(
        fences("a\n```yaml\nname: x\n"),
        Err(2),
        "an unclosed block is named"
    );
}

/// The relative link targets of a page: `](target)` and `](target#anchor)`.
fn relative_links(text: &str) -> Vec<String> {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").expect("a valid regex");
    link.captures_iter(text)
        .map(|c| c[1].to_owned())
        .filter(|t| !t.contains("://") && !t.starts_with('#') && !t.starts_with("mailto:"))
        .map(|t| t.split('#').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn no_markdown_file_points_outside_the_repository() {
    let root = repo().canonicalize().expect("the repository exists");
    let mut pages = Vec::new();
    markdown_files(&root, &mut pages);
    assert!(pages.len() >= 5, "{pages:?}");
    let mut problems = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("the page is readable");
        let name = relative(page);
        if text.contains("../shared") || text.contains("shared/SPEC") {
            problems.push(format!(
                "{name}: names a file outside the repository (../shared)"
            ));
        }
        for target in relative_links(&text) {
            let resolved = page.parent().unwrap_or(&root).join(&target);
            match resolved.canonicalize() {
                Ok(found) if found.starts_with(&root) => {}
                Ok(_) => problems.push(format!("{name}: `{target}` is outside the repository")),
                Err(_) => problems.push(format!("{name}: `{target}` does not exist")),
            }
        }
    }
    for page in documentation() {
        let text = std::fs::read_to_string(&page).expect("the page is readable");
        if text
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == "SPEC")
        {
            problems.push(format!(
                "{}: refers to SPEC, which a clone does not have; link docs/reference.md",
                relative(&page)
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
