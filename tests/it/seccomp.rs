//! Running in a container: the default seccomp profiles of Docker (25.0 and
//! later) and containerd (2.0 and later) refuse io_uring, so ringway must
//! say so in one line that points to the profile it ships
//! (`deploy/seccomp/ringway.json`), and that profile must let ringway run.
//!
//! The tests run the real binary under a real seccomp filter, installed in
//! the child between fork and exec (`pre_exec`: `PR_SET_NO_NEW_PRIVS`, then
//! `seccomp(SECCOMP_SET_MODE_FILTER)`), built here as classic BPF:
//! - a filter that refuses only `io_uring_setup` (EPERM as Docker and
//!   containerd answer, ENOSYS as CRI-O and Podman do) checks the message;
//! - the shipped profile itself, compiled to BPF for the system calls of
//!   [`RINGWAY_SYSCALLS`], checks that a pipeline with a file input, a TCP
//!   input, `--data-dir` and `--metrics` runs and drains under it.
//!
//! Also checked: the profile is what `deploy/seccomp/generate.py` makes of
//! Docker's default, allows nothing Docker's does not beyond the three
//! io_uring calls, and the DaemonSet manifest parses and its arguments pass
//! `ringway check`. x86-64 only, like the profile.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROFILE: &str = "deploy/seccomp/ringway.json";
const UPSTREAM: &str = "deploy/seccomp/upstream/docker-28.5.2-default.json";
const DAEMONSET: &str = "deploy/kubernetes/daemonset.yaml";
const CONTAINERS_DOC: &str = "docs/operations.md#containers-and-kubernetes";
const IO_URING: [&str; 3] = ["io_uring_enter", "io_uring_register", "io_uring_setup"];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read_json(path: &str) -> Value {
    let text = fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid JSON: {e}"))
}

/// `(libc constant name, x86-64 number)` of each system call in the list;
/// [`ringway_syscalls`] gives the call's own name.
macro_rules! syscalls {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), libc::$name as u32)),*]
    };
}

/// [`RINGWAY_SYSCALLS`] as `(name, number)`: `SYS_read` is `read`.
fn ringway_syscalls() -> impl Iterator<Item = (&'static str, u32)> {
    RINGWAY_SYSCALLS
        .iter()
        .map(|(constant, nr)| (constant.strip_prefix("SYS_").expect("SYS_ name"), *nr))
}

/// The system calls ringway makes at run time (x86-64), with their numbers.
/// Derived with `strace -f -c` over two runs of the release binary: one with
/// a file input (format=json), UDP (syslog), TCP and OTLP inputs, file and
/// null outputs, `--data-dir`, `--metrics` scraped with curl (/metrics and
/// /healthz), a datagram, a TCP line and an OTLP POST, stopped by SIGTERM;
/// one with a `tcp:` output whose peer refused (connect, retry sleeps).
/// Added by hand: what those runs cannot show but a run can need: `clone`
/// (glibc's fallback when the profile answers clone3 with ENOSYS),
/// `execve`'s successors `exit`/`exit_group`/`rt_sigreturn`, and the calls
/// std and glibc make on paths those runs did not take (`fstat`, `lseek`,
/// `pwrite64`, `writev`, `readv`, `recvmsg`, `sendmsg`, `getpeername`,
/// `unlink`, `ftruncate`, `fdatasync`, `getdents64`, `dup`, `dup2`, `dup3`,
/// `pipe2`, `getpid`, `tgkill`, `nanosleep`, `clock_gettime`, `mremap`,
/// `getcwd`, `readlink`, `uname`, `renameat`, `unlinkat`, `statfs`,
/// `fstatfs`, `membarrier`). [`ringway_runs_under_the_shipped_profile`]
/// runs ringway with only these allowed (and only where the profile allows
/// them), so a call missing here fails that test.
const RINGWAY_SYSCALLS: &[(&str, u32)] = syscalls![
    SYS_accept4,
    SYS_access,
    SYS_arch_prctl,
    SYS_bind,
    SYS_brk,
    SYS_clock_gettime,
    SYS_clock_nanosleep,
    SYS_clone,
    SYS_clone3,
    SYS_close,
    SYS_connect,
    SYS_dup,
    SYS_dup2,
    SYS_dup3,
    SYS_eventfd2,
    SYS_execve,
    SYS_exit,
    SYS_exit_group,
    SYS_fadvise64,
    SYS_fcntl,
    SYS_fdatasync,
    SYS_flock,
    SYS_fstat,
    SYS_fstatfs,
    SYS_fsync,
    SYS_ftruncate,
    SYS_futex,
    SYS_getcwd,
    SYS_getdents64,
    SYS_getpeername,
    SYS_getpid,
    SYS_getrandom,
    SYS_getsockname,
    SYS_getsockopt,
    SYS_gettid,
    SYS_inotify_add_watch,
    SYS_inotify_init1,
    SYS_inotify_rm_watch,
    SYS_io_uring_enter,
    SYS_io_uring_register,
    SYS_io_uring_setup,
    SYS_ioctl,
    SYS_listen,
    SYS_lseek,
    SYS_madvise,
    SYS_membarrier,
    SYS_mkdir,
    SYS_mmap,
    SYS_mprotect,
    SYS_mremap,
    SYS_munmap,
    SYS_nanosleep,
    SYS_newfstatat,
    SYS_open,
    SYS_openat,
    SYS_pipe2,
    SYS_poll,
    SYS_prctl,
    SYS_pread64,
    SYS_prlimit64,
    SYS_pwrite64,
    SYS_read,
    SYS_readlink,
    SYS_readv,
    SYS_recvfrom,
    SYS_recvmsg,
    SYS_rename,
    SYS_renameat,
    SYS_restart_syscall,
    SYS_rseq,
    SYS_rt_sigaction,
    SYS_rt_sigprocmask,
    SYS_rt_sigreturn,
    SYS_rt_sigtimedwait,
    SYS_sched_getaffinity,
    SYS_sched_setaffinity,
    SYS_sched_yield,
    SYS_sendmsg,
    SYS_sendto,
    SYS_set_robust_list,
    SYS_set_tid_address,
    SYS_setsockopt,
    SYS_shutdown,
    SYS_sigaltstack,
    SYS_socket,
    SYS_statfs,
    SYS_statx,
    SYS_sysinfo,
    SYS_tgkill,
    SYS_uname,
    SYS_unlink,
    SYS_unlinkat,
    SYS_write,
    SYS_writev,
];

// ---------------------------------------------------------------------------
// Classic BPF for seccomp (linux/filter.h, linux/seccomp.h)

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`: nr, arch, then args[6] (u64 each;
/// little-endian, so an argument's low 32 bits come first).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The head of every filter: refuse (EPERM) anything but x86-64 system
/// calls, then load the call's number.
fn filter_head() -> Vec<libc::sock_filter> {
    vec![
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(BPF_LD_W_ABS, DATA_NR),
        jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ]
}

/// A filter that answers `nr` with `errno` and allows everything else.
fn refuse_one(nr: u32, errno: i32) -> Vec<libc::sock_filter> {
    let mut program = filter_head();
    program.push(jump(BPF_JMP_JEQ_K, nr, 0, 1));
    program.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | errno as u32));
    program.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    program
}

/// Makes the child install `program` (after `PR_SET_NO_NEW_PRIVS`, which
/// an unprivileged filter needs) just before it execs ringway.
fn under_filter(program: Vec<libc::sock_filter>) -> impl FnOnce(&mut Command) {
    move |command| {
        // SAFETY: the closure runs in the forked child before exec and only
        // makes two system calls on memory the child owns (the program was
        // built before the fork); nothing allocates or takes a lock.
        unsafe {
            command.pre_exec(move || {
                let fprog = libc::sock_fprog {
                    len: program.len() as u16,
                    filter: program.as_ptr() as *mut libc::sock_filter,
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let fprog_ptr: *const libc::sock_fprog = &fprog;
                if libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    fprog_ptr,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The seccomp return value of a profile rule's action.
fn action_of(rule: &Value, default_errno: u64) -> u32 {
    match rule["action"].as_str() {
        Some("SCMP_ACT_ALLOW") => SECCOMP_RET_ALLOW,
        Some("SCMP_ACT_ERRNO") => {
            let errno = rule["errnoRet"].as_u64().unwrap_or(default_errno);
            SECCOMP_RET_ERRNO | u32::try_from(errno).expect("errno fits")
        }
        other => panic!("this test's compiler knows no action {other:?}"),
    }
}

/// The low 32 bits of a rule argument's value, which is all the
/// comparisons in the profile need for the calls in [`RINGWAY_SYSCALLS`]
/// (the values are below 2^32; a larger one fails here rather than being
/// compared wrongly).
fn low_word(argument: &Value, key: &str) -> u32 {
    let value = argument[key].as_u64().unwrap_or(0);
    u32::try_from(value).unwrap_or_else(|_| panic!("argument {argument} needs 64-bit compares"))
}

/// The shipped profile as BPF, for the calls of [`RINGWAY_SYSCALLS`] (any
/// other call gets the profile's default action): each rule that names a
/// listed call becomes `if nr == NR [&& argument test] return ACTION`, in
/// the profile's order, so an argument test that fails falls through to
/// the next rule and finally to the default, as in libseccomp.
fn compile_profile(profile: &Value) -> Vec<libc::sock_filter> {
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let default_errno = profile["defaultErrnoRet"]
        .as_u64()
        .expect("defaultErrnoRet");
    let mut program = filter_head();
    for rule in profile["syscalls"].as_array().expect("syscalls") {
        let action = action_of(rule, default_errno);
        let names = rule["names"].as_array().expect("names");
        for (name, nr) in ringway_syscalls() {
            if !names.iter().any(|n| n == name) {
                continue;
            }
            let mut block = Vec::new();
            match rule["args"].as_array().map(Vec::as_slice) {
                None | Some([]) => block.push(stmt(BPF_RET_K, action)),
                Some([argument]) => {
                    let index = argument["index"].as_u64().expect("index") as u32;
                    block.push(stmt(BPF_LD_W_ABS, DATA_ARGS + 8 * index));
                    let value = low_word(argument, "value");
                    match argument["op"].as_str() {
                        // Not equal: jump over the return when equal.
                        Some("SCMP_CMP_NE") => block.push(jump(BPF_JMP_JEQ_K, value, 1, 0)),
                        Some("SCMP_CMP_EQ") => block.push(jump(BPF_JMP_JEQ_K, value, 0, 1)),
                        Some("SCMP_CMP_MASKED_EQ") => {
                            block.push(stmt(BPF_ALU_AND_K, value));
                            let wanted = low_word(argument, "valueTwo");
                            block.push(jump(BPF_JMP_JEQ_K, wanted, 0, 1));
                        }
                        other => panic!("this test's compiler knows no op {other:?}"),
                    }
                    block.push(stmt(BPF_RET_K, action));
                    // Not matched: the number back in the accumulator.
                    block.push(stmt(BPF_LD_W_ABS, DATA_NR));
                }
                Some(more) => panic!("{name}: rules on several arguments: {more:?}"),
            }
            program.push(jump(BPF_JMP_JEQ_K, nr, 0, block.len() as u8));
            program.extend(block);
        }
    }
    program.push(stmt(
        BPF_RET_K,
        SECCOMP_RET_ERRNO | u32::try_from(default_errno).expect("errno fits"),
    ));
    assert!(program.len() < 4096, "BPF program too long");
    program
}

// ---------------------------------------------------------------------------
// The start-up error

fn assert_refused_message(errno: i32) {
    let dir = TempDir::new("seccomp-refused");
    let input = dir.join("in.log");
    fs::write(&input, b"one\n").unwrap();
    let args = [
        "run",
        "--input",
        &format!("file:{}", p(&input)),
        "--output",
        &format!("file:{}", p(&dir.join("out.log"))),
        "--exit-on-eof",
    ];
    let filter = refuse_one(libc::SYS_io_uring_setup as u32, errno);
    let done = spawn_configured(&dir, &args, under_filter(filter)).wait(TIMEOUT);
    done.assert_code(1);
    let reason = std::io::Error::from_raw_os_error(errno);
    let expected = format!(
        "ringway: error: io_uring is not allowed here (io_uring_setup: {reason}): \
         a seccomp filter blocks it, as the default profiles of Docker, containerd, CRI-O and Podman do; \
         run with the profile {PROFILE} (see {CONTAINERS_DOC})\n"
    );
    assert_eq!(
        done.stderr, expected,
        "under a filter refusing io_uring_setup with {reason}, stderr must be exactly this one line"
    );
    assert!(!done.stderr.contains("panicked") && !done.stderr.contains("backtrace"));
    assert!(!dir.join("out.log").exists(), "nothing may start");
}

#[test]
fn io_uring_refused_with_eperm_as_docker_and_containerd_do_is_one_line_naming_the_profile() {
    assert_refused_message(libc::EPERM);
}

#[test]
fn io_uring_refused_with_enosys_as_cri_o_and_podman_do_is_one_line_naming_the_profile() {
    assert_refused_message(libc::ENOSYS);
}

#[test]
fn the_refusal_message_points_to_files_and_a_heading_that_exist() {
    assert!(repo(PROFILE).is_file(), "{PROFILE} is missing");
    let (doc, anchor) = CONTAINERS_DOC.split_once('#').unwrap();
    let text = fs::read_to_string(repo(doc)).unwrap();
    let heading = text
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .find(|heading| heading.to_lowercase().replace(' ', "-") == anchor);
    assert!(
        heading.is_some(),
        "{doc} has no '## ' heading for #{anchor}"
    );
}

// ---------------------------------------------------------------------------
// The profile

/// The names every rule with `action` allows or answers, unconditionally
/// (no argument test) or with one.
fn names_with(profile: &Value, action: &str, with_args: bool) -> BTreeSet<String> {
    profile["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|rule| rule["action"] == action)
        .filter(|rule| with_args || rule["args"].as_array().is_none_or(Vec::is_empty))
        .flat_map(|rule| rule["names"].as_array().expect("names").iter())
        .map(|name| name.as_str().expect("name").to_string())
        .collect()
}

#[test]
fn profile_allows_io_uring_and_every_call_ringway_makes() {
    let profile = read_json(PROFILE);
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let architectures = profile["architectures"].as_array().expect("architectures");
    assert!(architectures.iter().any(|a| a == "SCMP_ARCH_X86_64"));
    for key in ["archMap", "includes", "excludes"] {
        assert!(
            !fs::read_to_string(repo(PROFILE)).unwrap().contains(key),
            "{PROFILE} uses Docker's key {key:?}, which containerd ignores"
        );
    }
    let allowed = names_with(&profile, "SCMP_ACT_ALLOW", false);
    for call in IO_URING {
        assert!(allowed.contains(call), "{PROFILE} does not allow {call}");
    }
    // clone3 is answered ENOSYS, so glibc creates threads with clone,
    // which the profile allows for the flags threads use (an argument test).
    let enosys: Vec<&Value> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| {
            rule["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "clone3")
        })
        .collect();
    assert!(
        allowed.contains("clone3") || enosys.iter().any(|rule| rule["errnoRet"] == libc::ENOSYS),
        "clone3 must be allowed or answered ENOSYS (glibc then falls back to clone)"
    );
    let allowed_with_args = names_with(&profile, "SCMP_ACT_ALLOW", true);
    for call in ["clone", "socket"] {
        assert!(
            allowed_with_args.contains(call),
            "{call} not allowed at all"
        );
    }
    let missing: Vec<&str> = ringway_syscalls()
        .map(|(name, _)| name)
        .filter(|name| !["clone", "clone3", "socket"].contains(name))
        .filter(|name| !allowed.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "{PROFILE} does not allow calls ringway makes: {missing:?}"
    );
}

#[test]
fn profile_is_dockers_default_plus_io_uring_only() {
    let upstream = read_json(UPSTREAM);
    let upstream_allowed = names_with(&upstream, "SCMP_ACT_ALLOW", true);
    for call in IO_URING {
        assert!(
            !upstream_allowed.contains(call),
            "{UPSTREAM} allows {call} already: then it is not the default that blocks io_uring"
        );
    }
    let profile = read_json(PROFILE);
    let extra: Vec<String> = names_with(&profile, "SCMP_ACT_ALLOW", true)
        .into_iter()
        .filter(|name| !upstream_allowed.contains(name) && !IO_URING.contains(&name.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "{PROFILE} allows calls Docker's default does not: {extra:?}"
    );
    // And it is exactly what the generator makes of the upstream file.
    let check = Command::new("python3")
        .arg(repo("deploy/seccomp/generate.py"))
        .arg("--check")
        .output()
        .expect("run python3 deploy/seccomp/generate.py --check");
    assert!(
        check.status.success(),
        "generate.py --check: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The `input 'NAME' listening on ADDR` line of the input named `name`.
fn input_address(ringway: &mut Ringway, name: &str) -> std::net::SocketAddr {
    let needle = format!("ringway: input '{name}' listening on ");
    let mut addr = None;
    wait_until(TIMEOUT, || {
        addr = ringway
            .stderr_whole_lines()
            .lines()
            .find_map(|line| line.strip_prefix(&needle)?.trim().parse().ok());
        addr.is_some() || !ringway.is_running()
    });
    addr.unwrap_or_else(|| panic!("no '{needle}ADDR' line:\n{}", ringway.stderr_now()))
}

#[test]
fn ringway_runs_under_the_shipped_profile() {
    let dir = TempDir::new("seccomp-profile-run");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    let file_lines = numbered_lines("file", 0..2000);
    fs::write(&input, &file_lines).unwrap();
    let file_spec = format!("file:{}", p(&input));
    let tcp_spec = "tcp:127.0.0.1:0";
    let args = [
        "run",
        "--input",
        &file_spec,
        "--input",
        tcp_spec,
        "--output",
        &format!("file:{}", p(&output)),
        "--data-dir",
        &p(&data),
        "--metrics",
        "127.0.0.1:0",
    ];
    let filter = compile_profile(&read_json(PROFILE));
    let mut ringway = spawn_configured(&dir, &args, under_filter(filter));
    let metrics = metrics_address(&mut ringway);
    let tcp = input_address(&mut ringway, tcp_spec);
    // The file first, then a line over TCP, so the output's order is known.
    let file_delivered = wait_until(TIMEOUT, || file_len(&output) >= file_lines.len() as u64);
    ringway.assert_running("under the shipped seccomp profile");
    assert!(
        file_delivered,
        "the file's lines did not arrive under the profile"
    );
    let mut sender = std::net::TcpStream::connect(tcp).expect("connect to the tcp input");
    sender.write_all(b"over tcp\n").unwrap();
    drop(sender);
    let mut expected = file_lines.clone();
    expected.extend_from_slice(b"over tcp\n");
    let delivered = wait_until(TIMEOUT, || file_len(&output) >= expected.len() as u64);
    ringway.assert_running("under the shipped seccomp profile");
    assert!(delivered, "the tcp line did not arrive under the profile");
    let text = metrics_text(metrics).expect("GET /metrics under the profile");
    assert!(text.contains("ringway_input_records_total"), "{text}");
    ringway.terminate();
    let done = ringway.wait(TIMEOUT);
    done.assert_success();
    assert_bytes_identical(&expected, &fs::read(&output).unwrap(), "under the profile");
    // A refused call that ringway works around (inotify, pinning) is
    // warned about: none may be.
    let complaints: Vec<&str> = done
        .stderr
        .lines()
        .filter(|line| line.contains("warning") || line.contains("error"))
        .collect();
    assert!(
        complaints.is_empty(),
        "under the profile ringway complained: {complaints:#?}"
    );
    assert!(
        fs::read_dir(&data).unwrap().next().is_some(),
        "no checkpoint written to --data-dir under the profile"
    );
}

/// Also proves the compiled filter bites: without io_uring in the profile
/// ringway stops with the message, so the run above is no accident of a
/// filter that lets everything through.
#[test]
fn the_compiled_profile_without_io_uring_is_refused() {
    let mut profile = read_json(PROFILE);
    let rules = profile["syscalls"].as_array_mut().unwrap();
    for rule in rules.iter_mut() {
        let names = rule["names"].as_array_mut().unwrap();
        names.retain(|name| !IO_URING.contains(&name.as_str().unwrap()));
    }
    let dir = TempDir::new("seccomp-profile-without-io-uring");
    let input = dir.join("in.log");
    fs::write(&input, b"one\n").unwrap();
    let args = [
        "run",
        "--input",
        &format!("file:{}", p(&input)),
        "--output",
        "null",
        "--exit-on-eof",
    ];
    let filter = compile_profile(&profile);
    let done = spawn_configured(&dir, &args, under_filter(filter)).wait(TIMEOUT);
    done.assert_code(1);
    assert!(
        done.stderr
            .starts_with("ringway: error: io_uring is not allowed here (io_uring_setup: "),
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// The DaemonSet

#[test]
fn daemonset_parses_and_runs_ringway_with_the_profile_and_valid_arguments() {
    let Some(python) = test_python("import yaml", "PyYAML") else {
        return;
    };
    let converted = Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(repo(DAEMONSET))
        .output()
        .expect("run python");
    assert!(
        converted.status.success(),
        "{DAEMONSET} does not parse: {}",
        String::from_utf8_lossy(&converted.stderr)
    );
    let documents: Value = serde_json::from_slice(&converted.stdout).unwrap();
    let daemonset = documents
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet document");
    assert_eq!(daemonset["apiVersion"], "apps/v1");
    let pod = &daemonset["spec"]["template"]["spec"];
    let selector = &daemonset["spec"]["selector"]["matchLabels"];
    let labels = &daemonset["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector.as_object().expect("selector.matchLabels") {
        assert_eq!(
            &labels[key], value,
            "the template's labels must match the selector"
        );
    }
    assert!(
        pod["tolerations"]
            .as_array()
            .expect("tolerations")
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none()),
        "a toleration with operator Exists and no key, to run on every node"
    );
    let container = &pod["containers"][0];
    let seccomp = &container["securityContext"]["seccompProfile"];
    assert_eq!(seccomp["type"], "Localhost");
    assert_eq!(seccomp["localhostProfile"], "ringway.json");

    // Mounts: /var/log read-only, the data dir writable, both hostPath.
    let volumes = pod["volumes"].as_array().expect("volumes");
    let host_path = |name: &Value| {
        volumes
            .iter()
            .find(|v| &v["name"] == name)
            .and_then(|v| v["hostPath"]["path"].as_str())
            .map(str::to_string)
    };
    let mounts = container["volumeMounts"].as_array().expect("volumeMounts");
    let mount = |path: &str| {
        mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("no volumeMount at {path}"))
    };
    assert_eq!(
        host_path(&mount("/var/log")["name"]).as_deref(),
        Some("/var/log")
    );
    assert_eq!(mount("/var/log")["readOnly"], true);

    // The arguments: the node glob with format=cri, --data-dir on the
    // mounted host directory, --metrics on the port the probes use.
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    assert_eq!(args[0], "run");
    let value_of = |flag: &str| {
        let at = args.iter().position(|a| a == flag);
        at.map(|at| args[at + 1].clone())
            .unwrap_or_else(|| panic!("no {flag} in args {args:?}"))
    };
    assert_eq!(
        value_of("--input"),
        "file:/var/log/pods/*/*/*.log,format=cri"
    );
    let data_dir = value_of("--data-dir");
    assert!(
        host_path(&mount(&data_dir)["name"]).is_some(),
        "--data-dir {data_dir} is not a hostPath mount"
    );
    assert_ne!(mount(&data_dir)["readOnly"], true);
    let metrics_port: u64 = value_of("--metrics")
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .expect("--metrics ADDR:PORT");
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(
            get["port"], metrics_port,
            "{probe} is not on --metrics' port"
        );
        assert!(
            get["path"] == "/metrics" || get["path"] == "/healthz",
            "{probe} path"
        );
    }
    let limits = &container["resources"]["limits"]["memory"];
    assert!(limits.is_string(), "a memory limit");

    // Every argument, format=cri and k8s metadata included, is one
    // `ringway check` accepts.
    let checked = &args[1..];
    let check = Command::new(ringway_bin())
        .arg("check")
        .args(checked)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "ringway check {checked:?}: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}
