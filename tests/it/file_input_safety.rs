//! A file input never reads ringway's own output back, under any name (a
//! symlink, a symlinked directory, a hard link, a file that appears in a
//! matched directory after start), and a file named as an input that cannot
//! be read says why (a FIFO, permission denied) instead of waiting silently.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `ringway run --input INPUT --output OUTPUT --exit-on-eof` plus `extra`,
/// to its end. Before the fix each of these read its own output back and
/// exited 0.
fn refused(dir: &TempDir, input: &str, output: &str, extra: &[&str]) -> Finished {
    let mut args = vec![
        "run",
        "--input",
        input,
        "--output",
        output,
        "--exit-on-eof",
        "--stats-interval",
        "0",
    ];
    args.extend_from_slice(extra);
    let done = run(dir, &args, Duration::from_secs(60));
    done.assert_code(2);
    assert!(
        done.stderr.contains("read back its own output"),
        "{}",
        done.stderr
    );
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    done
}

#[test]
fn an_output_that_is_a_symlink_to_an_input_file_is_refused() {
    let dir = TempDir::new("feedback-symlink");
    let input = dir.join("in.log");
    fs::write(&input, numbered_lines("s", 0..100)).unwrap();
    let link = dir.join("link.log");
    symlink(&input, &link).unwrap();
    let done = refused(
        &dir,
        &format!("file:{}", p(&input)),
        &format!("file:{}", p(&link)),
        &[],
    );
    assert!(done.stderr.contains("same file"), "{}", done.stderr);
    // The other way round: the input is the link, the output the file.
    refused(
        &dir,
        &format!("file:{}", p(&link)),
        &format!("file:{}", p(&input)),
        &[],
    );
    // The dead-letter file too.
    let out = dir.join("out.log");
    refused(
        &dir,
        &format!("file:{},format=json", p(&input)),
        &format!("file:{}", p(&out)),
        &["--on-invalid", "deadletter", "--dead-letter", &p(&link)],
    );
    assert_eq!(
        fs::read(&input).unwrap(),
        numbered_lines("s", 0..100),
        "nothing was written into the input"
    );
}

#[test]
fn an_output_in_a_symlinked_directory_that_the_glob_matches_is_refused() {
    let dir = TempDir::new("feedback-dir");
    let logs = dir.subdir("logs");
    fs::write(logs.join("a.log"), b"x\n").unwrap();
    let alias = dir.join("alias");
    symlink(&logs, &alias).unwrap();
    // The output does not exist yet: its directory is what the glob reads.
    refused(
        &dir,
        &format!("file:{}/*.log", p(&logs)),
        &format!("file:{}/out.log", p(&alias)),
        &[],
    );
    // The glob goes through the symlinked directory instead.
    refused(
        &dir,
        &format!("file:{}/*.log", p(&alias)),
        &format!("file:{}/out.log", p(&logs)),
        &[],
    );
    // The glob's directory part is a glob too.
    refused(
        &dir,
        &format!("file:{}/*/*.log", p(dir.path())),
        &format!("file:{}/out.log", p(&logs)),
        &[],
    );
    assert!(!logs.join("out.log").exists(), "nothing was written");
    // An output whose name the glob does not match is fine.
    let fine = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&alias)),
            "--output",
            &format!("file:{}/out.txt", p(&logs)),
            "--exit-on-eof",
            "--stats-interval",
            "0",
        ],
        TIMEOUT,
    );
    fine.assert_success();
    assert_eq!(fs::read(logs.join("out.txt")).unwrap(), b"x\n");
}

#[test]
fn an_output_hard_linked_to_an_input_is_refused() {
    let dir = TempDir::new("feedback-hardlink");
    let input = dir.join("in.log");
    fs::write(&input, numbered_lines("h", 0..100)).unwrap();
    let linked = dir.join("out.log");
    fs::hard_link(&input, &linked).unwrap();
    let done = refused(
        &dir,
        &format!("file:{}", p(&input)),
        &format!("file:{}", p(&linked)),
        &[],
    );
    assert!(done.stderr.contains("same file"), "{}", done.stderr);
    // Matched by a glob.
    let logs = dir.subdir("logs");
    fs::hard_link(&input, logs.join("copy.log")).unwrap();
    refused(
        &dir,
        &format!("file:{}/*.log", p(&logs)),
        &format!("file:{}", p(&input)),
        &[],
    );
    assert_eq!(fs::read(&input).unwrap(), numbered_lines("h", 0..100));
}

#[test]
fn an_output_that_a_glob_matches_only_after_start_is_skipped_with_a_warning() {
    let dir = TempDir::new("feedback-late");
    let input_dir = dir.subdir("in/a");
    let input = input_dir.join("x.log");
    let out_dir = dir.subdir("out");
    let output = out_dir.join("o.log");
    let summary = dir.join("summary.json");
    append(&input, &numbered_lines("late", 0..1000));
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/in/*/*.log", p(dir.path())),
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
            "--stats-interval",
            "0",
        ],
    );
    assert!(wait_until(TIMEOUT, || file_len(&output) == file_len(&input)));
    // Now the glob's `*` matches the output's directory too.
    symlink(&out_dir, dir.join("in/b")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || ringway
            .stderr_now()
            .contains("o.log")),
        "a warning names the output; stderr:\n{}",
        ringway.stderr_now()
    );
    append(&input, &numbered_lines("late", 1000..2000));
    assert!(wait_until(TIMEOUT, || file_len(&output) >= file_len(&input)));
    // Time passes on purpose: the rescans (every second) of these 3 s must
    // keep skipping it, and not warn again.
    std::thread::sleep(Duration::from_secs(3));
    ringway.assert_running("after the output became a match");
    let stderr = ringway.stderr_now();
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert_bytes_identical(
        &numbered_lines("late", 0..2000),
        &read_output(&output),
        "every line once; the output was not read back",
    );
    assert!(stderr.contains("skipping"), "{stderr}");
    assert!(stderr.contains("output"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|line| line.contains("o.log")).count(),
        1,
        "warned about once: {stderr}"
    );
    assert!(read_summary(&summary).input(0, "files_skipped") >= 1);
}

#[test]
fn a_fifo_named_as_input_with_exit_on_eof_is_an_error_that_says_why() {
    let dir = TempDir::new("unreadable-fifo");
    let fifo = dir.join("in.fifo");
    mkfifo(&fifo);
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&fifo)),
            "--output",
            "null",
            "--exit-on-eof",
        ],
        Duration::from_secs(60),
    );
    assert_ne!(done.code(), Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("FIFO"), "{}", done.stderr);
    assert!(done.stderr.contains("--input stdin"), "{}", done.stderr);
    assert!(!done.stderr.contains("no file matches"), "{}", done.stderr);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
}

#[test]
fn a_fifo_named_as_input_is_skipped_saying_why_while_tailing() {
    let dir = TempDir::new("unreadable-tail");
    let fifo = dir.join("in.fifo");
    mkfifo(&fifo);
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&fifo)),
            "--output",
            "null",
            "--stats-interval",
            "0",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || ringway
            .stderr_now()
            .contains("FIFO")),
        "{}",
        ringway.stderr_now()
    );
    // Time passes on purpose: two rescans must neither warn again nor say
    // that no file matches.
    std::thread::sleep(Duration::from_millis(2500));
    ringway.assert_running("while the FIFO is skipped");
    let stderr = ringway.stderr_now();
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert!(!stderr.contains("no file matches"), "{stderr}");
    assert_eq!(stderr.matches("FIFO").count(), 1, "said once: {stderr}");
}

/// Runs ringway as `nobody`, so file permissions apply (the tests run as
/// root, which reads everything).
fn run_as_nobody(dir: &TempDir, args: &[&str]) -> Finished {
    use std::os::unix::process::CommandExt;
    let stderr_path = dir.join("nobody.stderr");
    let started = std::time::Instant::now();
    let mut child = Command::new(ringway_bin())
        .args(args)
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn ringway as nobody");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ringway {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: Vec::new(),
        stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
        args: args.iter().map(|arg| arg.to_string()).collect(),
        elapsed: started.elapsed(),
    }
}

#[test]
fn a_file_named_as_input_without_read_permission_is_an_error_under_exit_on_eof() {
    let dir = TempDir::new("unreadable-perm");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let input = dir.join("secret.log");
    fs::write(&input, b"not for nobody\n").unwrap();
    fs::set_permissions(&input, fs::Permissions::from_mode(0o000)).unwrap();
    assert_is_unreadable_by_nobody(&input);
    let done = run_as_nobody(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            "null",
            "--exit-on-eof",
            "--stats-interval",
            "0",
        ],
    );
    assert_ne!(done.code(), Some(0), "{}", done.stderr);
    assert!(
        done.stderr.to_lowercase().contains("permission denied"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains("no file matches"), "{}", done.stderr);
}

fn assert_is_unreadable_by_nobody(path: &Path) {
    let status = Command::new("cat")
        .arg(path)
        .uid_nobody()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run cat as nobody");
    assert!(!status.success(), "nobody can read {}", path.display());
}

trait AsNobody {
    fn uid_nobody(&mut self) -> &mut Self;
}

impl AsNobody for Command {
    fn uid_nobody(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        self.uid(65534).gid(65534)
    }
}
