//! The command line of the one-core benches (`syslog_parse`,
//! `cri_convert`): `[--passes N] FILE...`, included into each with
//! `#[path]`.

/// The passes (`None` when `--passes` is not given) and the files, in
/// order. A missing or non-positive `--passes` value or an unknown flag is
/// handed to `usage_error`, which ends the process.
pub fn passes_and_files(usage_error: fn(&str) -> !) -> (Option<usize>, Vec<String>) {
    let mut passes: Option<usize> = None;
    let mut files: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--passes" {
            let value = args
                .next()
                .unwrap_or_else(|| usage_error("--passes needs a number"));
            passes = Some(
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage_error("--passes needs a positive number")),
            );
        } else if arg.starts_with("--") {
            usage_error(&format!("unknown flag {arg}"));
        } else {
            files.push(arg);
        }
    }
    (passes, files)
}
