//! The documentation against the binary: the committed flag reference
//! (`docs/flags.md`) and man page (`docs/ringway.1`) are what the binary
//! generates now, every flag of `ringway run --help` is in the reference,
//! `ringway completions bash` completes in a real bash, the README stays
//! short and opens with its two commands, and every relative link in the
//! README and docs/ leads to a file and heading that exist.

use crate::common::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// How to regenerate the committed files (as docs/README.md says).
const REGENERATE: &str = "regenerate with: cargo build --release && \
target/release/ringway internal flags-doc > docs/flags.md && \
target/release/ringway internal man > docs/ringway.1";

fn ringway_stdout(args: &[&str]) -> String {
    let done = Command::new(ringway_bin())
        .args(args)
        .output()
        .expect("run ringway");
    assert!(
        done.status.success(),
        "ringway {args:?}: {}\n{}",
        done.status,
        String::from_utf8_lossy(&done.stderr)
    );
    String::from_utf8(done.stdout).expect("UTF-8 output")
}

/// The committed file equals what the binary prints; on a mismatch the
/// message names the first differing line and how to regenerate.
fn assert_generated(path: &str, args: &[&str]) {
    let committed = fs::read_to_string(repo().join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}; {REGENERATE}"));
    let generated = ringway_stdout(args);
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "{path} is not what `ringway {}` generates now (first difference at line {}:\n  \
             committed: {:?}\n  generated: {:?});\n{REGENERATE}",
            args.join(" "),
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn committed_flag_reference_is_what_the_binary_generates() {
    assert_generated("docs/flags.md", &["internal", "flags-doc"]);
}

#[test]
fn committed_man_page_is_what_the_binary_generates() {
    assert_generated("docs/ringway.1", &["internal", "man"]);
}

/// The long flags a help text lists: `--max-line` from `      --max-line <SIZE>`.
fn flags_of_help(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| {
            line.split([' ', ','])
                .find(|word| word.starts_with("--"))
                .map(|word| word.trim_end_matches(['=', '<']).to_string())
        })
        .collect()
}

#[test]
fn every_flag_of_run_help_is_in_the_flag_reference() {
    let help = ringway_stdout(&["run", "--help"]);
    let flags = flags_of_help(&help);
    assert!(
        flags.len() >= 40 && flags.contains("--max-line") && flags.contains("--help"),
        "could not read the flags of `ringway run --help`: {flags:?}\n{help}"
    );
    let reference = fs::read_to_string(repo().join("docs/flags.md")).expect("docs/flags.md");
    let run_section = reference
        .split("\n## ringway run\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/flags.md has a ## ringway run section");
    let missing: Vec<&String> = flags
        .iter()
        .filter(|flag| {
            !run_section.lines().any(|row| {
                row.starts_with("| `")
                    && (row.contains(&format!("{flag}`")) || row.contains(&format!("{flag} ")))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "flags of `ringway run --help` without a row in docs/flags.md: {missing:?}; {REGENERATE}"
    );
}

#[test]
fn bash_completion_completes_a_subcommand() {
    let dir = TempDir::new("completion");
    let script = dir.join("ringway.bash");
    fs::write(&script, ringway_stdout(&["completions", "bash"])).unwrap();
    // The way bash itself calls a completion function: COMP_WORDS and
    // COMP_CWORD set, the function called with the command, the word being
    // completed and the word before it.
    let probe = format!(
        r#"source '{}' || exit 3
complete -p ringway || exit 4
COMP_WORDS=(ringway ru); COMP_CWORD=1; COMP_LINE='ringway ru'; COMP_POINT=${{#COMP_LINE}}
_ringway ringway ru ringway || exit 5
printf 'reply:%s\n' "${{COMPREPLY[@]}}"
COMP_WORDS=(ringway run --max-li); COMP_CWORD=2; COMP_LINE='ringway run --max-li'; COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
_ringway ringway --max-li run || exit 6
printf 'flag:%s\n' "${{COMPREPLY[@]}}"
"#,
        p(&script)
    );
    let done = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(&probe)
        .output()
        .expect("bash is on every host the tests run on");
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{}\n{stdout}\n{stderr}", done.status);
    let registered = stdout
        .lines()
        .find(|line| line.starts_with("complete "))
        .unwrap_or_default();
    assert!(
        registered.contains("-F _ringway") && registered.ends_with(" ringway"),
        "complete -p ringway: {stdout}"
    );
    let replies: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("reply:"))
        .collect();
    assert_eq!(replies, ["run"], "ringway ru<TAB>: {stdout}\n{stderr}");
    let flags: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("flag:"))
        .collect();
    assert_eq!(
        flags,
        ["--max-line"],
        "ringway run --max-li<TAB>: {stdout}\n{stderr}"
    );
}

#[test]
fn completions_exist_for_zsh_and_fish_and_not_for_hidden_commands() {
    let zsh = ringway_stdout(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef ringway"), "{zsh}");
    let fish = ringway_stdout(&["completions", "fish"]);
    assert!(fish.contains("complete -c ringway"), "{fish}");
    for script in [&zsh, &fish, &ringway_stdout(&["completions", "bash"])] {
        assert!(script.contains("completions"), "{script}");
        assert!(
            !script.contains("flags-doc"),
            "a hidden command is completed"
        );
    }
    let dir = TempDir::new("completion-shell");
    let done = run(&dir, &["completions", "tcsh"], QUICK_TIMEOUT);
    done.assert_code(2);
}

const QUICK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[test]
fn readme_is_short_and_opens_with_the_two_commands() {
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines; at most 250");
    let first_block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.split("\n```").next())
        .expect("README has a sh block");
    let commands: Vec<&str> = first_block
        .lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(
        commands,
        ["cargo run --release -- run", "sudo scripts/test.sh"],
        "README's first commands"
    );
    let ci = fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(ci.contains("scripts/test.sh"), "{ci}");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fence = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        if !fence && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every `](target)` of a Markdown text, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        if fence {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    found
}

/// Pages generated by another part of the project; a link to one of them
/// may precede the page in a branch.
const GENERATED_ELSEWHERE: &[&str] = &["docs/metrics.md"];

#[test]
fn every_relative_link_of_the_docs_resolves() {
    let mut pages: Vec<PathBuf> = vec![
        repo().join("README.md"),
        repo().join("bench/results/README.md"),
    ];
    for entry in fs::read_dir(repo().join("docs")).expect("docs/") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "md") {
            pages.push(path);
        }
    }
    assert!(pages.len() >= 10, "{pages:?}");
    let mut broken = Vec::new();
    for page in &pages {
        let text = fs::read_to_string(page).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = match link.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let Ok(target) = target.canonicalize() else {
                let relative = page.parent().unwrap().join(file);
                let relative = relative
                    .strip_prefix(repo())
                    .map(|path| path.to_string_lossy().replace("/./", "/"))
                    .unwrap_or_default();
                let normalized = normalize(&relative);
                if !GENERATED_ELSEWHERE.contains(&normalized.as_str()) {
                    broken.push(format!("{}: {link}: no such file", page.display()));
                }
                continue;
            };
            if let Some(fragment) = fragment
                && target.extension().is_some_and(|ext| ext == "md")
            {
                let headings = anchors(&fs::read_to_string(&target).unwrap());
                if !headings.contains(fragment) {
                    broken.push(format!(
                        "{}: {link}: no heading with that anchor",
                        page.display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// `docs/../bench/x` as `bench/x`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}
