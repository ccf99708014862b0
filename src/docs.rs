//! The reference documentation generated from the clap definitions, so
//! `--help`, the flag reference and the man page cannot drift apart:
//! [`flags_markdown`] renders `docs/flags.md`, [`man_page`] renders
//! `docs/ringway.1` (with `clap_mangen`), and [`completions`] prints a shell
//! completion script (with `clap_complete`). `ringway internal flags-doc`
//! and `ringway internal man` print the first two; tests/it/docs.rs checks
//! the committed files equal what the binary prints.

use crate::cli::{Cli, CompletionShell, InternalCommand};
use clap::{Arg, CommandFactory};
use std::fmt::Write as _;
use std::io::Write as _;

/// How to bring the committed files up to date (written into flags.md;
/// tests/it/docs.rs prints the same when a committed file is stale).
const REGENERATE: &str = "cargo build --release && target/release/ringway internal flags-doc > docs/flags.md && target/release/ringway internal man > docs/ringway.1";

/// The command line as documented: built (so help and version flags and
/// the subcommands' binary names are in place), with the package version
/// instead of the build's commit, so the generated files change only when
/// the command line does.
fn documented_command() -> clap::Command {
    let mut command = Cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .mut_subcommands(|sub| sub.mut_args(aliases_in_help));
    command.build();
    command
}

/// `--help` shows a flag's visible aliases (old names) by itself; the flag
/// table and the man page get them from the help text, said here.
fn aliases_in_help(arg: Arg) -> Arg {
    let Some(aliases) = arg.get_visible_aliases() else {
        return arg;
    };
    let aliases: Vec<String> = aliases.iter().map(|alias| format!("--{alias}")).collect();
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    let help = format!(
        "{}. Its old name {} is still accepted.",
        help.trim_end_matches('.'),
        aliases.join(", ")
    );
    arg.help(help)
}

/// The subcommands a user sees: not clap's `help`, not hidden ones.
fn visible_subcommands(command: &clap::Command) -> Vec<&clap::Command> {
    command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect()
}

/// The flags of a command a user sees, in declaration order.
fn visible_args(command: &clap::Command) -> Vec<&Arg> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .collect()
}

/// Each subcommand with the first one before it that takes the same
/// flags, if any: its flags are then named by reference, not listed again.
fn with_earlier_twin<'a>(
    subcommands: &'a [&'a clap::Command],
) -> impl Iterator<Item = (&'a clap::Command, Option<&'a clap::Command>)> {
    subcommands.iter().enumerate().map(|(i, sub)| {
        let earlier = subcommands[..i]
            .iter()
            .find(|earlier| same_flags(earlier, sub))
            .copied();
        (*sub, earlier)
    })
}

/// Two commands take the same flags: `check` takes every flag of `run`,
/// documented once.
fn same_flags(a: &clap::Command, b: &clap::Command) -> bool {
    let ids = |command: &clap::Command| -> Vec<String> {
        visible_args(command)
            .iter()
            .map(|arg| arg.get_id().to_string())
            .collect()
    };
    ids(a) == ids(b)
}

/// An argument as it is typed: `-h, --help`, `--max-line SIZE`, `SHELL`.
fn spelling(arg: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let value = arg
        .get_value_names()
        .map(|names| names.join(" "))
        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
    if names.is_empty() {
        return value;
    }
    let mut spelled = names.join(", ");
    if arg.get_action().takes_values() {
        spelled.push(' ');
        spelled.push_str(&value);
    }
    spelled
}

/// An argument's help text and default: clap's default value, else a
/// `[default: …]` the help text ends with (for defaults clap cannot show,
/// such as `--output`'s `stdout`), which is then cut from the text.
fn help_and_default(arg: &Arg) -> (String, Option<String>) {
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    if !arg.get_action().takes_values() {
        return (help, None);
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| value.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() {
        return (help, Some(defaults.join(", ")));
    }
    if let Some(start) = help.rfind("[default: ")
        && help.ends_with(']')
    {
        let default = help[start + "[default: ".len()..help.len() - 1].to_string();
        return (help[..start].trim_end().to_string(), Some(default));
    }
    (help, None)
}

/// The values a value-enum flag takes, each with its help.
fn possible_values(arg: &Arg) -> Vec<(String, Option<String>)> {
    if !arg.get_action().takes_values() {
        return Vec::new();
    }
    arg.get_possible_values()
        .into_iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| {
            (
                value.get_name().to_string(),
                value.get_help().map(ToString::to_string),
            )
        })
        .collect()
}

/// Help text as a sentence: clap drops the full stop of a one-paragraph
/// doc comment, which a table cell followed by more text needs.
fn sentence(text: &str) -> String {
    match text.chars().last() {
        None => String::new(),
        Some('.' | '!' | '?' | ')') => text.to_string(),
        Some(_) => format!("{text}."),
    }
}

/// Text inside a Markdown table cell: `|` would end the cell, `<` open an
/// HTML tag and `*` start emphasis.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('*', "\\*")
}

/// Plain text outside a table, escaped as in a cell but keeping `|`.
fn prose(text: &str) -> String {
    text.replace('<', "&lt;").replace('*', "\\*")
}

fn usage(command: &clap::Command) -> String {
    let usage = command.clone().render_usage().to_string();
    usage.trim().trim_start_matches("Usage:").trim().to_string()
}

fn about(command: &clap::Command) -> String {
    command
        .get_long_about()
        .or_else(|| command.get_about())
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn markdown_table(out: &mut String, command: &clap::Command) {
    out.push_str("| flag | default | meaning |\n|---|---|---|\n");
    for arg in visible_args(command) {
        let (help, default) = help_and_default(arg);
        let mut meaning = cell(&sentence(&help));
        let values = possible_values(arg);
        if !values.is_empty() {
            meaning.push_str(" Values: ");
            let listed: Vec<String> = values
                .iter()
                .map(|(name, help)| match help {
                    Some(help) => format!("`{name}`: {}", cell(help.trim_end_matches('.'))),
                    None => format!("`{name}`"),
                })
                .collect();
            meaning.push_str(&listed.join("; "));
            meaning.push('.');
        }
        let default = match default {
            Some(default) => format!("`{}`", default.replace('|', "\\|")),
            None if arg.get_action().takes_values() => "—".to_string(),
            None => "off".to_string(),
        };
        let _ = writeln!(out, "| `{}` | {default} | {meaning} |", spelling(arg));
    }
}

/// `docs/flags.md`: every subcommand with its usage, description and a
/// table of its flags (default and meaning), as `--help` shows them.
pub(crate) fn flags_markdown() -> String {
    let command = documented_command();
    let mut out = String::new();
    out.push_str("# ringway command-line reference\n\n");
    out.push_str(
        "<!-- Generated by `ringway internal flags-doc` from the command-line definitions \
         (src/cli/mod.rs); do not edit. Regenerate with: ",
    );
    out.push_str(REGENERATE);
    out.push_str(" -->\n\n");
    out.push_str(
        "Every flag of every command, with its default, as `ringway COMMAND --help` prints it \
         (`man ./docs/ringway.1` shows the same as a manual page). In a config file \
         (`--config`, see [config.md](config.md)) each flag of `run` is a key: its long name \
         with `_` for `-` (`--max-line 4MiB` is `max_line = \"4MiB\"`).\n\n",
    );
    let _ = writeln!(out, "{}\n", prose(&about(&command)));
    let _ = writeln!(out, "Usage: `{}`\n", usage(&command));
    let subcommands = visible_subcommands(&command);
    out.push_str("Commands:\n\n");
    for sub in &subcommands {
        let _ = writeln!(
            out,
            "- [`ringway {}`](#ringway-{}): {}",
            sub.get_name(),
            sub.get_name(),
            prose(
                &sub.get_about()
                    .map(ToString::to_string)
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
    }
    out.push('\n');
    markdown_table(&mut out, &command);
    for (sub, earlier) in with_earlier_twin(&subcommands) {
        let _ = writeln!(out, "\n## ringway {}\n", sub.get_name());
        let text = about(sub).split_whitespace().collect::<Vec<_>>().join(" ");
        let _ = writeln!(out, "{}\n", prose(&text));
        let _ = writeln!(out, "Usage: `{}`\n", usage(sub));
        match earlier {
            Some(earlier) => {
                let _ = writeln!(
                    out,
                    "Takes every flag of [`ringway {}`](#ringway-{}).",
                    earlier.get_name(),
                    earlier.get_name()
                );
            }
            None => markdown_table(&mut out, sub),
        }
        if let Some(after) = sub.get_after_long_help().or_else(|| sub.get_after_help()) {
            for line in after.to_string().lines() {
                let _ = writeln!(out, "\n{}", prose(line));
            }
        }
    }
    // One newline closes the file, whatever the last part ended with.
    let trimmed = out.trim_end().to_string();
    trimmed + "\n"
}

/// clap_mangen opens every rendered part with the same two lines that
/// define the apostrophe string; the page needs them once, at its top.
const ROFF_PREAMBLE: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];

/// A section that clap_mangen rendered (`.SH OPTIONS` …), turned into a
/// subsection of the page under `title`.
fn as_subsection(rendered: Vec<u8>, title: &str) -> String {
    let text = String::from_utf8(rendered).expect("roff is UTF-8");
    let mut out = String::new();
    let mut retitled = false;
    for line in text.lines() {
        if ROFF_PREAMBLE.contains(&line) {
            continue;
        }
        if !retitled && line.starts_with(".SH") {
            let _ = writeln!(out, ".SS \"{title}\"");
            retitled = true;
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// Plain text for a roff text line: a backslash and a hyphen (which roff
/// may break or render as a dash) escaped.
fn roff_text(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// `docs/ringway.1`: one manual page for every command. clap_mangen renders
/// the top level and, for each subcommand, a section with its synopsis,
/// description, flags and notes (clap_mangen alone would make one page per
/// subcommand).
pub(crate) fn man_page() -> String {
    let command = documented_command();
    let man = clap_mangen::Man::new(command.clone())
        .title("RINGWAY")
        .source(format!("ringway {}", env!("CARGO_PKG_VERSION")))
        .manual("ringway manual");
    const IN_MEMORY: &str = "rendering into memory cannot fail";
    let mut out = Vec::new();
    man.render_title(&mut out).expect(IN_MEMORY);
    man.render_name_section(&mut out).expect(IN_MEMORY);
    man.render_synopsis_section(&mut out).expect(IN_MEMORY);
    man.render_description_section(&mut out).expect(IN_MEMORY);
    man.render_options_section(&mut out).expect(IN_MEMORY);
    // The preamble once, at the top; not again before every section.
    let rendered = String::from_utf8(out).expect("roff is UTF-8");
    let mut page = String::new();
    for line in ROFF_PREAMBLE {
        let _ = writeln!(page, "{line}");
    }
    for line in rendered
        .lines()
        .filter(|line| !ROFF_PREAMBLE.contains(line))
    {
        let _ = writeln!(page, "{line}");
    }
    let subcommands = visible_subcommands(&command);
    page.push_str(".SH COMMANDS\n");
    for sub in &subcommands {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        let _ = writeln!(
            page,
            ".TP\n\\fBringway {}\\fR\n{}",
            sub.get_name(),
            roff_text(&about)
        );
    }
    for (sub, earlier) in with_earlier_twin(&subcommands) {
        let name = sub.get_name();
        let _ = writeln!(page, ".SH \"RINGWAY {}\"", name.to_uppercase());
        let man = clap_mangen::Man::new((*sub).clone());
        let mut section = Vec::new();
        man.render_synopsis_section(&mut section).expect(IN_MEMORY);
        page.push_str(&as_subsection(section, "Synopsis"));
        let mut section = Vec::new();
        man.render_description_section(&mut section)
            .expect(IN_MEMORY);
        page.push_str(&as_subsection(section, "Description"));
        match earlier {
            Some(earlier) => {
                let _ = writeln!(
                    page,
                    ".SS Options\nTakes every option of \\fBringway {}\\fR.",
                    earlier.get_name()
                );
            }
            None if !visible_args(sub).is_empty() => {
                let mut section = Vec::new();
                man.render_options_section(&mut section).expect(IN_MEMORY);
                page.push_str(&as_subsection(section, "Options"));
            }
            None => {}
        }
        if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
            let mut section = Vec::new();
            man.render_extra_section(&mut section).expect(IN_MEMORY);
            // Each line of the notes (SIZE: …, DURATION: …) on a line of its
            // own, as --help prints them; roff would fill them into one.
            let notes = as_subsection(section, "Sizes and durations");
            let mut text_lines = 0;
            for line in notes.lines() {
                if !line.starts_with('.') {
                    if text_lines > 0 {
                        page.push_str(".br\n");
                    }
                    text_lines += 1;
                }
                page.push_str(line);
                page.push('\n');
            }
        }
    }
    page.push_str(
        ".SH \"SEE ALSO\"\nThe documentation in the docs/ directory of the ringway sources: \
         README.md, docs/README.md (an index), docs/flags.md (this reference in Markdown).\n",
    );
    page
}

/// The command line as the shells complete it: clap_complete would offer
/// hidden subcommands too, so `internal` is left out here.
fn completed_command() -> clap::Command {
    let full = Cli::command();
    clap::Command::new("ringway")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .subcommands(
            full.get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned(),
        )
}

/// `ringway completions SHELL`: the completion script on stdout.
pub(crate) fn completions(shell: CompletionShell) -> i32 {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    // Rendered into memory first: clap_complete panics on a failed write,
    // and `ringway completions bash | head` must not be an internal error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut completed_command(), "ringway", &mut script);
    print(&script)
}

/// `ringway internal …`: print a generated document on stdout.
pub(crate) fn internal(command: InternalCommand) -> i32 {
    let text = match command {
        InternalCommand::FlagsDoc => flags_markdown(),
        InternalCommand::Man => man_page(),
    };
    print(text.as_bytes())
}

/// Writes to stdout; a reader that closed the pipe early (`| head`) is not
/// an error, any other failure is (exit 1).
fn print(bytes: &[u8]) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(error) => {
            eprintln!("ringway: error: writing to stdout: {error}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_in_the_help_text_moves_to_the_default_column() {
        let command = documented_command();
        let run = command.find_subcommand("run").unwrap();
        let output = run
            .get_arguments()
            .find(|arg| arg.get_long() == Some("output"))
            .unwrap();
        let (help, default) = help_and_default(output);
        assert_eq!(default.as_deref(), Some("stdout"));
        assert!(!help.contains("[default:"), "{help}");
    }

    #[test]
    fn flags_markdown_has_a_row_per_flag_of_run_and_no_build_commit() {
        let markdown = flags_markdown();
        assert!(
            markdown.contains("| `--max-line SIZE` | `1MiB` |"),
            "{markdown}"
        );
        assert!(markdown.contains("| `--sqpoll` | off |"), "{markdown}");
        // The build's commit would make the committed file change with
        // every commit.
        assert!(!markdown.contains(crate::metrics::VERSION_LINE));
        assert!(
            !markdown.contains("## ringway internal"),
            "hidden subcommand documented"
        );
    }

    #[test]
    fn the_man_page_has_a_section_per_command() {
        let page = man_page();
        for name in ["RUN", "CHECK", "TOP", "COMPLETIONS"] {
            assert!(page.contains(&format!(".SH \"RINGWAY {name}\"")), "{page}");
        }
        assert!(page.contains("max\\-line"), "{page}");
    }
}
