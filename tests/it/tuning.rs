//! The tuning scripts' dry runs: they name every setting and change nothing.

use std::path::Path;
use std::process::Command;

const UDP_SETTINGS: [&str; 5] = [
    "net.core.rmem_max",
    "net.core.rmem_default",
    "net.core.netdev_max_backlog",
    "net.ipv4.udp_mem",
    "net.ipv4.udp_rmem_min",
];

fn sysctl_values() -> Vec<String> {
    UDP_SETTINGS
        .iter()
        .map(|key| {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::read_to_string(&path).unwrap_or_else(|e| format!("unreadable: {e}"))
        })
        .collect()
}

#[test]
fn udp_host_dry_run_names_each_setting_and_changes_nothing() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning/udp-host.sh");
    let drop_in = Path::new("/etc/sysctl.d/61-ringway-udp.conf");
    let drop_in_before = std::fs::read(drop_in).ok();
    let before = sysctl_values();
    let output = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        output.status.success(),
        "dry run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("dry run"), "{text}");
    for key in UDP_SETTINGS {
        assert!(
            text.contains(key),
            "the dry run does not name {key}:\n{text}"
        );
    }
    assert_eq!(sysctl_values(), before, "a dry run changed a sysctl");
    assert_eq!(
        std::fs::read(drop_in).ok(),
        drop_in_before,
        "a dry run wrote the sysctl.d drop-in"
    );
}

#[test]
fn sysctl_dry_run_changes_nothing() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning/sysctl.sh");
    let before = sysctl_values();
    let output = Command::new("bash")
        .arg(&script)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "dry run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("net.core.rmem_max"));
    assert_eq!(sysctl_values(), before, "a dry run changed a sysctl");
}
