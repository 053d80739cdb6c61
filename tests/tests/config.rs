//! The command line around the configuration file: `check-config`,
//! `serve --config` refusing a bad file with its name, line, key and reason,
//! `hash-password`, and the shipped example.

use std::path::Path;
use std::process::{Command, Output};

use edgedav_tests::*;

fn edgedav(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("running edgedav")
}

fn write(dir: &Path, text: &str) -> String {
    let file = dir.join("edgedav.toml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

const GOOD: &str = r#"
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "a"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PgyIGjf6+3LHf8mAoQOAoQ5u3FGzWMgnYE/3ng/WXkk"
home = { backend = "local", path = "home" }
"#;

#[test]
fn check_config_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), GOOD);
    let out = edgedav(&["check-config", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 bindings, 1 users)"));
    // Checking creates nothing.
    assert!(!dir.path().join("home").exists());
}

#[test]
fn unknown_keys_and_bad_values_are_refused_with_file_line_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key, reason) in [
        (
            GOOD.replace(
                "listen = \"127.0.0.1:0\"",
                "listen = \"127.0.0.1:0\"\nlisten_backlog = 5",
            ),
            "bindings[0]",
            "listen_backlog",
        ),
        (
            format!("{GOOD}\n[sandbox]\nmax_cpu_time = \"ten seconds\"\n"),
            "sandbox.max_cpu_time",
            "invalid duration",
        ),
        (
            format!("{GOOD}\n[sandbox]\nmax_memory = \"lots\"\n"),
            "sandbox.max_memory",
            "invalid size",
        ),
        (
            GOOD.replace("listen = \"127.0.0.1:0\"", "listen = \"localhost-ish\""),
            "bindings[0].listen",
            "address",
        ),
        (
            format!("{GOOD}permissions = {{ \"/x\" = [\"fly\"] }}\n"),
            "users[0].permissions",
            "fly",
        ),
        (
            GOOD.replace("backend = \"local\"", "backend = \"ftp\""),
            "users[0].home",
            "ftp",
        ),
        (
            GOOD.replace("$argon2id$", "$argon2i$"),
            "users[0].password_hash",
            "argon2id",
        ),
        (
            format!(
                "{GOOD}\n[[users]]\nname = \"a\"\nhome = {{ backend = \"local\", path = \"h\" }}\n"
            ),
            "users[1].name",
            "twice",
        ),
        (
            format!("[log]\nformat = \"xml\"\n{GOOD}"),
            "log.format",
            "xml",
        ),
    ] {
        let file = write(dir.path(), &text);
        for args in [
            vec!["check-config", file.as_str()],
            vec!["serve", "--config", file.as_str()],
        ] {
            let out = edgedav(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} for {key}: {stderr}");
            assert!(stderr.contains(&file), "names the file: {stderr}");
            assert!(stderr.contains(key), "names the key {key}: {stderr}");
            assert!(
                stderr.contains(reason),
                "gives the reason ({reason}): {stderr}"
            );
            assert!(
                out.stdout.is_empty(),
                "serves nothing: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // Syntax errors name the line.
    let file = write(dir.path(), "[[bindings]]\nlisten = \n");
    let out = edgedav(&["check-config", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{file}:2")), "{stderr}");
}

#[test]
fn config_and_zero_config_flags_do_not_mix() {
    let out = edgedav(&["serve", "--config", "x.toml", "--root", "/tmp"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn hash_password_prints_an_argon2id_phc_string() {
    let hash = hash_password("correct horse battery staple\n");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_ne!(
        hash,
        hash_password("correct horse battery staple\n"),
        "salted"
    );
    // The hash works for logging in (the trailing newline is not part of the password).
    let s = Server::start_config(&format!(
        "[[bindings]]\nlisten = \"127.0.0.1:0\"\n\n[[users]]\nname = \"h\"\npassword_hash = \"{hash}\"\nhome = {{ backend = \"local\", path = \"home\" }}\n"
    ));
    assert_eq!(
        s.req_as("h", "correct horse battery staple", "GET", "/")
            .exec()
            .status,
        200
    );
}

/// Exactly the command the example's first lines (and the README) show, run
/// from the repository root on the file as shipped.
#[test]
fn the_example_configuration_is_valid_as_shipped() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(binary())
        .args(["check-config", "examples/edgedav.toml"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (2 bindings, 3 users)"));
}

#[test]
fn users_can_come_from_a_separate_users_file() {
    let hash = hash_password("pw");
    let s = Server::start_config_with(
        "[server]\nusers_file = \"users.toml\"\n\n[[bindings]]\nlisten = \"127.0.0.1:0\"\n",
        |dir| {
            std::fs::write(
                dir.join("users.toml"),
                format!("[[users]]\nname = \"f\"\npassword_hash = \"{hash}\"\nhome = {{ backend = \"local\", path = \"fhome\" }}\n"),
            )
            .unwrap();
        },
    );
    s.req_as("f", "pw", "PUT", "/x")
        .body("from the users file")
        .exec()
        .expect(&[201], "PUT");
    assert!(s.dir().join("fhome/x").is_file());
    // A bad key there is reported with the users file's name.
    std::fs::write(s.dir().join("users.toml"), "[[users]]\nname = \"f\"\nhome = { backend = \"local\", path = \"h\" }\nshell = \"/bin/sh\"\n").unwrap();
    let out = edgedav(&[
        "check-config",
        s.dir().join("edgedav.toml").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("users.toml") && stderr.contains("shell"),
        "{stderr}"
    );
}
