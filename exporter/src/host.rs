//! Facts about the host, read once at start-up, for the OTLP Resource.
//!
//! A value that cannot be read is left out of the Resource rather than
//! replaced by a placeholder.

use std::path::Path;

/// Host identity and OS description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostInfo {
    /// `host.id`: /etc/machine-id (or the D-Bus machine id).
    pub host_id: Option<String>,
    /// `host.name`: the kernel's nodename.
    pub host_name: Option<String>,
    /// `host.arch` in semantic-convention spelling (`amd64`, `arm64`, ...).
    pub host_arch: String,
    /// `os.name`: NAME from os-release.
    pub os_name: Option<String>,
    /// `os.version`: the kernel release.
    pub os_version: Option<String>,
    /// `os.description`: PRETTY_NAME and the kernel release.
    pub os_description: Option<String>,
    /// `vigil.host.boot_id`: /proc/sys/kernel/random/boot_id.
    pub boot_id: Option<String>,
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Parse one `KEY=value` from os-release content (value unquoted).
pub fn os_release_value(content: &str, key: &str) -> Option<String> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\'').to_owned())
    })
}

/// The semantic-convention `host.arch` for a Rust target architecture.
pub fn semconv_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

impl HostInfo {
    /// Read the running host.
    pub fn detect() -> Self {
        let os_release =
            std::fs::read_to_string("/etc/os-release").or_else(|_| std::fs::read_to_string("/usr/lib/os-release")).unwrap_or_default();
        let kernel = read_trimmed("/proc/sys/kernel/osrelease");
        let pretty = os_release_value(&os_release, "PRETTY_NAME");
        let os_description = match (&pretty, &kernel) {
            (Some(p), Some(k)) => Some(format!("{p} (Linux {k})")),
            (Some(p), None) => Some(p.clone()),
            (None, Some(k)) => Some(format!("Linux {k}")),
            (None, None) => None,
        };
        HostInfo {
            host_id: read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id")),
            host_name: read_trimmed("/proc/sys/kernel/hostname"),
            host_arch: semconv_arch(std::env::consts::ARCH).to_owned(),
            os_name: os_release_value(&os_release, "NAME"),
            os_version: kernel,
            os_description,
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_os_release() {
        let c = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(os_release_value(c, "NAME").as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(os_release_value(c, "ID").as_deref(), Some("debian"));
        assert_eq!(os_release_value(c, "VERSION"), None);
    }

    #[test]
    fn arch_names_follow_semconv() {
        assert_eq!(semconv_arch("x86_64"), "amd64");
        assert_eq!(semconv_arch("aarch64"), "arm64");
    }

    #[test]
    fn detects_this_host() {
        let h = HostInfo::detect();
        assert!(h.os_version.is_some(), "kernel release must be readable on Linux");
        assert_eq!(h.boot_id.as_ref().map(String::len), Some(36), "boot id is a UUID");
    }
}
