//! `examples/edgedav.service`: `systemd-analyze verify` accepts it without a
//! single warning, and its sandbox rates well in `systemd-analyze security`.
//! Skipped only where systemd-analyze is absent.

use std::path::Path;
use std::process::{Command, Output};

use edgedav_tests::*;

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/edgedav.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn analyze(args: &[&str], unit: &Path) -> Option<Output> {
    match Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("systemd-analyze: {e}"),
    }
}

/// Writes `text` as `edgedav.service` in a fresh directory with ExecStart
/// pointing at the binary under test (verify checks that it is executable;
/// /usr/local/bin/edgedav is not installed here); returns its path and the
/// verification's output, or `None` without systemd-analyze.
fn verify(text: &str) -> Option<(tempfile::TempDir, Output)> {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("edgedav.service");
    let bin = binary().display().to_string();
    std::fs::write(&unit, text.replace("/usr/local/bin/edgedav", &bin)).unwrap();
    let out = analyze(&["verify"], &unit)?;
    Some((dir, out))
}

fn report(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_example_unit_verifies_cleanly() {
    let text = unit_text();
    for line in [
        "User=edgedav",
        "ExecStart=/usr/local/bin/edgedav serve --config /etc/edgedav/edgedav.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/edgedav",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
    ] {
        assert!(text.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let Some((_dir, out)) = verify(&text) else {
        skip("SKIPPED the_example_unit_verifies_cleanly: systemd-analyze is not installed\n");
        return;
    };
    // verify exits 0 even for unknown keys and bad values: any output is a
    // finding.
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        report(&out)
    );
    // The check above does catch mistakes: a misspelt key is reported.
    let (_dir, typo) = verify(&text.replace("ProtectHome=yes", "ProtectHom=yes")).unwrap();
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("Unknown key 'ProtectHom'"),
        "a typo went unnoticed: {}",
        report(&typo)
    );
}

#[test]
fn the_example_unit_is_well_sandboxed() {
    let Some((dir, _)) = verify(&unit_text()) else {
        skip("SKIPPED the_example_unit_is_well_sandboxed: systemd-analyze is not installed\n");
        return;
    };
    let out = analyze(
        &["security", "--offline=yes", "--no-pager"],
        &dir.path().join("edgedav.service"),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "→ Overall exposure level for edgedav.service: 1.9 OK 🙂"; 0 is
    // fully locked down, 10 is a service with no sandbox at all.
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for edgedav.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {}", report(&out)));
    assert!(score <= 2.5, "exposure {score} is above 2.5:\n{text}");
}
