//! The admin listener's Prometheus `/metrics` reflects the traffic just
//! sent; the users cache keeps argon2 off the hot path; the access log is
//! one JSON line per request without secrets.

use std::collections::HashMap;

use edgedav_tests::*;

fn start() -> Server {
    let hash = hash_password("secret-pw-4242");
    Server::start_config(&format!(
        r#"
[log]
format = "json"

[admin]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "m"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
"#
    ))
}

/// `name{labels} value` lines, by `name{labels}`.
fn scrape(s: &Server) -> HashMap<String, f64> {
    let admin = s.admin.as_ref().expect("admin listener");
    let r = s.client().get(format!("{admin}/metrics")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, name: &str) -> f64 {
    *m.get(name)
        .unwrap_or_else(|| panic!("no metric {name} in {m:#?}"))
}

#[test]
fn metrics_reflect_the_traffic_just_sent() {
    let s = start();
    let before = scrape(&s);
    assert_eq!(get(&before, "edgedav_login_attempts_total"), 0.0);

    let body = vec![b'x'; 10_000];
    assert_eq!(s.req_as("m", "wrong", "GET", "/").exec().status, 401);
    s.req_as("m", "secret-pw-4242", "PUT", "/a")
        .body(body.clone())
        .exec()
        .expect(&[201], "PUT");
    s.req_as("m", "secret-pw-4242", "PUT", "/b")
        .body(body.clone())
        .exec()
        .expect(&[201], "PUT");
    let r = s.req_as("m", "secret-pw-4242", "GET", "/a").exec();
    assert_eq!(r.body.len(), 10_000);
    s.req_as("m", "secret-pw-4242", "PROPFIND", "/")
        .header("Depth", "1")
        .exec()
        .expect(&[207], "PROPFIND");
    assert_eq!(
        s.req_as("m", "secret-pw-4242", "GET", "/missing")
            .exec()
            .status,
        404
    );

    let m = scrape(&s);
    assert_eq!(get(&m, "edgedav_login_attempts_total"), 6.0);
    assert_eq!(get(&m, "edgedav_login_failures_total"), 1.0);
    assert_eq!(get(&m, "edgedav_login_successes_total"), 5.0);
    assert_eq!(
        get(&m, "edgedav_requests_total{method=\"PUT\",status=\"201\"}"),
        2.0
    );
    assert_eq!(
        get(&m, "edgedav_requests_total{method=\"GET\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        get(&m, "edgedav_requests_total{method=\"GET\",status=\"401\"}"),
        1.0
    );
    assert_eq!(
        get(&m, "edgedav_requests_total{method=\"GET\",status=\"404\"}"),
        1.0
    );
    assert_eq!(
        get(
            &m,
            "edgedav_requests_total{method=\"PROPFIND\",status=\"207\"}"
        ),
        1.0
    );
    assert!(get(&m, "edgedav_bytes_received_total") >= 20_000.0);
    assert!(get(&m, "edgedav_bytes_sent_total") >= 10_000.0);
    assert!(get(&m, "edgedav_connections_accepted_total") >= 1.0);
    assert!(get(&m, "edgedav_active_connections") >= 0.0);
    // Every request that reached the component got an instance: a new one
    // or a warm one of the same user.
    assert_eq!(
        get(&m, "edgedav_instantiation_seconds_count") + get(&m, "edgedav_instance_reuses_total"),
        5.0
    );
    assert!(get(&m, "edgedav_instantiation_seconds_count") >= 1.0);
    assert!(get(&m, "edgedav_instantiation_seconds_sum") > 0.0);
    assert_eq!(
        get(&m, "edgedav_component_errors_total{kind=\"trap\"}"),
        0.0
    );
    // The users cache: one argon2 verification for the right password (the
    // wrong one costs another), however many requests follow.
    assert_eq!(get(&m, "edgedav_password_verifications_total"), 2.0);
    assert_eq!(get(&m, "edgedav_bans_total"), 0.0);

    let health = s
        .client()
        .get(format!("{}/healthz", s.admin.as_ref().unwrap()))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn access_log_is_one_json_line_per_request_without_secrets() {
    let s = start();
    s.req_as("m", "secret-pw-4242", "PUT", "/log.txt")
        .body("12345")
        .exec()
        .expect(&[201], "PUT");
    assert_eq!(
        s.req_as("m", "secret-pw-4242", "GET", "/log.txt")
            .exec()
            .text(),
        "12345"
    );
    // The access line is written when the response ends; give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = s.log();
    assert!(
        !log.contains("secret-pw-4242"),
        "password in the log:\n{log}"
    );
    assert!(
        !log.to_ascii_lowercase().contains("authorization"),
        "Authorization in the log:\n{log}"
    );
    assert!(
        !log.contains("bTpzZWNyZXQtcHctNDI0Mg"),
        "credentials in the log"
    );

    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("edgedav::access"))
        .collect();
    assert_eq!(access.len(), 2, "{log}");
    let put = access[0];
    for field in [
        "\"method\":\"PUT\"",
        "\"path\":\"/log.txt\"",
        "\"status\":201",
        "\"bytes_in\":5",
        "\"user\":\"m\"",
        "\"remote\":\"127.0.0.1\"",
        "\"duration_ms\":",
    ] {
        assert!(put.contains(field), "{field} missing in {put}");
    }
    assert!(put.starts_with('{') && put.ends_with('}'), "{put}");
    assert!(access[1].contains("\"bytes_out\":5"), "{}", access[1]);
}

#[test]
fn sighup_reload_keeps_connections_open() {
    let s = start();
    assert_eq!(
        s.req_as("m", "secret-pw-4242", "GET", "/").exec().status,
        200
    );
    let accepted = get(&scrape(&s), "edgedav_connections_accepted_total");
    let text = std::fs::read_to_string(s.dir().join("edgedav.toml")).unwrap();
    s.write_config(&text.replace("name = \"m\"", "name = \"m\"\nread_only = true"));
    s.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !s.log().contains("configuration reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload:\n{}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The same keep-alive connection carries on, under the new rules.
    assert_eq!(
        s.req_as("m", "secret-pw-4242", "GET", "/").exec().status,
        200
    );
    assert_eq!(
        s.req_as("m", "secret-pw-4242", "PUT", "/x")
            .body("x")
            .exec()
            .status,
        403
    );
    let m = scrape(&s);
    assert_eq!(
        get(&m, "edgedav_connections_accepted_total"),
        accepted,
        "a new connection was needed"
    );
    assert_eq!(get(&m, "edgedav_config_reloads_total"), 1.0);
}
