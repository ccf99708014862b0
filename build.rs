//! Build information for `ringway --version` and `ringway_build_info`:
//! the git commit the binary was built from and the cargo profile.
//!
//! Sets `RINGWAY_GIT_COMMIT` (`git rev-parse --short HEAD`, with `-dirty`
//! when tracked files differ from it; `unknown` outside a git checkout or
//! without git; `RINGWAY_BUILD_COMMIT` in the environment overrides it, for
//! packagers building from a tarball) and `RINGWAY_BUILD_PROFILE`
//! (`release` or `debug`, as cargo names the profile's base).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RINGWAY_BUILD_COMMIT");
    let commit = match std::env::var("RINGWAY_BUILD_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_string(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_string()),
    };
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=RINGWAY_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=RINGWAY_BUILD_PROFILE={profile}");
}

/// `abc1234` or `abc1234-dirty`; `None` when this is not a git checkout or
/// git is not installed. Also tells cargo which git files to watch, so a
/// commit, a checkout or a staged change rebuilds with the new value.
fn git_commit() -> Option<String> {
    let hash = git(&["rev-parse", "--short", "HEAD"])?;
    // HEAD names the branch; the branch's ref (loose or packed) names the
    // commit; the index changes with what is staged. A worktree keeps its
    // HEAD and index apart from the shared refs, so ask git where each is.
    let mut watched = vec![git_path("HEAD"), git_path("index"), git_path("packed-refs")];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git_path(&reference));
    }
    for path in watched.into_iter().flatten() {
        // A path that does not exist would make cargo rerun this script on
        // every build; skip it.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    // An edit to a tracked file makes the tree dirty without touching the
    // index: watch the sources too (the crate rebuilds for them anyway).
    for tracked in ["src", "Cargo.toml", "Cargo.lock"] {
        if Path::new(tracked).exists() {
            println!("cargo:rerun-if-changed={tracked}");
        }
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

/// Where git keeps `name` for this checkout (worktrees included).
fn git_path(name: &str) -> Option<PathBuf> {
    git(&["rev-parse", "--git-path", name]).map(PathBuf::from)
}

/// The trimmed stdout of `git ARGS` when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_string())
}
