//! Tests of the configuration file: parsing, values and validation.

use super::values::{parse_duration, parse_size};
use super::*;

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let dir = std::env::temp_dir().join(format!("edgedav-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("edgedav.toml");
    std::fs::write(&path, text).unwrap();
    let result = load(&path);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PgyIGjf6+3LHf8mAoQOAoQ5u3FGzWMgnYE/3ng/WXkk";

fn minimal(extra_user: &str) -> String {
    format!(
        r#"
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "alice"
password_hash = "{HASH}"
home = {{ backend = "local", path = "homes/alice" }}
{extra_user}
"#
    )
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    assert!(parse_duration("7 parsecs").is_err());
    assert!(parse_duration("-1s").is_err());
    assert_eq!(parse_size("10KiB").unwrap(), 10240);
    assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
    assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
    assert_eq!(parse_size("512").unwrap(), 512);
    assert!(parse_size("1XB").is_err());
}

#[test]
fn networks() {
    let net: IpNet = "10.0.0.0/8".parse().unwrap();
    assert!(net.contains("10.1.2.3".parse().unwrap()));
    assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
    assert!(!net.contains("11.0.0.1".parse().unwrap()));
    let one: IpNet = "127.0.0.1".parse().unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(!one.contains("127.0.0.2".parse().unwrap()));
    let all: IpNet = "::/0".parse().unwrap();
    assert!(all.contains("2001:db8::1".parse().unwrap()));
    assert!("10.0.0.0/33".parse::<IpNet>().is_err());
    assert!("nope".parse::<IpNet>().is_err());
}

#[test]
fn a_minimal_file_loads_with_defaults() {
    let config = load_text(&minimal("")).unwrap();
    let b = &config.bindings[0];
    assert!(b.http2 && b.tls.is_none());
    assert_eq!(b.idle_timeout.0, Duration::from_secs(120));
    assert_eq!(b.keepalive_timeout.0, Duration::from_secs(60));
    assert_eq!(b.max_connections_per_ip, 64);
    assert_eq!(b.min_body_rate.0, 1024);
    assert_eq!(config.sandbox.max_memory.0, 128 << 20);
    assert_eq!(config.sandbox.instance_wait.0, Duration::from_secs(10));
    assert_eq!(config.sandbox.max_instances_per_ip, 64);
    let HomeSpec::Local { path } = &config.users[0].home else {
        panic!("a local home")
    };
    assert!(path.is_absolute() && path.ends_with("homes/alice"));
}

#[test]
fn unknown_keys_are_refused_with_file_line_and_key() {
    let e = load_text(&minimal("colour = \"blue\"")).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("edgedav.toml:"), "{text}");
    assert!(text.contains("users[0]"), "{text}");
    assert!(text.contains("colour"), "{text}");
    assert_eq!(e.line, Some(9), "{text}");

    let e = load_text(&format!(
        "{}\n[server]\nshutdown_grace = \"5 fortnights\"\n",
        minimal("")
    ))
    .unwrap_err();
    assert_eq!(e.key, "server.shutdown_grace", "{e}");
    assert!(e.reason.contains("unknown unit"), "{e}");
}

#[test]
fn bad_values_are_refused() {
    let e = load_text(&minimal("permissions = { \"/docs\" = [\"lsit\"] }")).unwrap_err();
    assert!(e.key.contains("permissions"), "{e}");
    assert!(e.reason.contains("lsit"), "{e}");

    let e = load_text(&minimal("permissions = { \"docs\" = [\"list\"] }")).unwrap_err();
    assert!(e.reason.contains("absolute"), "{e}");

    let e = load_text(&minimal("quota_bytes = 0")).unwrap_err();
    assert_eq!(e.key, "users[0].quota_bytes", "{e}");

    let bad_hash = minimal("").replace(HASH, "plaintext");
    let e = load_text(&bad_hash).unwrap_err();
    assert_eq!(e.key, "users[0].password_hash", "{e}");

    let e = load_text(&format!(
        "{}\n[[users]]\nname = \"alice\"\nhome = {{ backend = \"local\", path = \"x\" }}\n",
        minimal("")
    ))
    .unwrap_err();
    assert!(e.reason.contains("twice"), "{e}");

    let anon = minimal("").replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nanonymous_user = \"nobody\"",
    );
    let e = load_text(&anon).unwrap_err();
    assert_eq!(e.key, "bindings[0].anonymous_user", "{e}");

    let e = load_text("[[users]]\nname = \"a\"\nhome = { backend = \"local\", path = \"x\" }\n")
        .unwrap_err();
    assert_eq!(e.key, "bindings", "{e}");

    for (setting, key) in [
        (
            "max_connections_per_ip = 0",
            "bindings[0].max_connections_per_ip",
        ),
        (
            "keepalive_timeout = \"0s\"",
            "bindings[0].keepalive_timeout",
        ),
        ("min_body_rate_grace = 0", "bindings[0].min_body_rate_grace"),
    ] {
        let text = minimal("").replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:0\"\n{setting}"),
        );
        assert_eq!(load_text(&text).unwrap_err().key, key);
    }
    let e = load_text(&format!(
        "[sandbox]\nmax_instances_per_ip = 0\n{}",
        minimal("")
    ))
    .unwrap_err();
    assert_eq!(e.key, "sandbox.max_instances_per_ip", "{e}");
    let e = load_text(&format!(
        "[sandbox]\ninstance_wait = \"soon\"\n{}",
        minimal("")
    ))
    .unwrap_err();
    assert_eq!(e.key, "sandbox.instance_wait", "{e}");
}

#[test]
fn cluster_settings_are_checked() {
    let with = |cluster: &str| format!("[cluster]\n{cluster}\n{}", minimal(""));
    let ok = load_text(&with(
        "database_url = \"postgres://edgedav@db.internal:5432/edgedav\"\nnode_name = \"a\"",
    ))
    .unwrap();
    let cluster = ok.cluster.unwrap();
    assert_eq!(cluster.pool_size, 8);
    assert_eq!(cluster.statement_timeout.0, Duration::from_secs(5));

    for (text, key, reason) in [
        (
            "database_url = \"http://x\"",
            "cluster.database_url",
            "PostgreSQL",
        ),
        (
            "database_url = \"postgres://a@b/c?sslmode=require\"",
            "cluster.database_url",
            "TLS",
        ),
        (
            "database_url = \"postgres://a@b/c\"\npool_size = 0",
            "cluster.pool_size",
            "between",
        ),
        (
            "database_url = \"postgres://a@b/c\"\nstatement_timeout = \"1ms\"",
            "cluster.statement_timeout",
            "between",
        ),
        (
            "database_url = \"postgres://a@b/c\"\nnode_name = \"\"",
            "cluster.node_name",
            "empty",
        ),
    ] {
        let e = load_text(&with(text)).unwrap_err();
        assert_eq!(e.key, key, "{text}: {e}");
        assert!(e.reason.contains(reason), "{text}: {e}");
    }
}
