//! Checks of a parsed configuration beyond what its types say: each failure
//! names the key and the reason.

use super::*;

pub(super) type Invalid = (String, String);

pub(super) fn validate(config: &Config, main_users: usize) -> Result<(), Invalid> {
    let err = |key: &str, reason: String| Err((key.to_owned(), reason));
    if config.bindings.is_empty() {
        return err(
            "bindings",
            "no [[bindings]]: configure at least one listener".into(),
        );
    }
    if config.users.is_empty() {
        return err(
            "users",
            "no [[users]]: configure at least one user (or serve without --config)".into(),
        );
    }
    if config.sandbox.max_memory.0 < (2 << 20) {
        return err(
            "sandbox.max_memory",
            "must be at least 2MiB (the embedded handler starts with 1.1 MiB)".into(),
        );
    }
    if config.sandbox.max_memory.0 > (4 << 30) {
        return err("sandbox.max_memory", "must be at most 4GiB".into());
    }
    if config.sandbox.max_instances == 0 {
        return err("sandbox.max_instances", "must be at least 1".into());
    }
    if config.sandbox.max_instances_per_ip == 0 {
        return err("sandbox.max_instances_per_ip", "must be at least 1".into());
    }
    if let Some(cluster) = &config.cluster {
        crate::cluster::check(cluster).map_err(|(k, e)| (format!("cluster.{k}"), e.to_string()))?;
    }
    let mut seen_listen = Vec::new();
    if let Some(admin) = &config.admin {
        seen_listen.push(admin.listen);
    }
    for (i, b) in config.bindings.iter().enumerate() {
        let key = |k: &str| format!("bindings[{i}].{k}");
        if b.listen.port() != 0 && seen_listen.contains(&b.listen) {
            return Err((
                key("listen"),
                format!("{} is already used by another listener", b.listen),
            ));
        }
        seen_listen.push(b.listen);
        for (k, value) in [
            ("max_connections", b.max_connections),
            ("max_connections_per_ip", b.max_connections_per_ip),
        ] {
            if value == 0 {
                return Err((key(k), "must be at least 1".into()));
            }
        }
        for (k, value) in [
            ("header_read_timeout", b.header_read_timeout),
            ("idle_timeout", b.idle_timeout),
            ("keepalive_timeout", b.keepalive_timeout),
            ("min_body_rate_grace", b.min_body_rate_grace),
        ] {
            if value.0.is_zero() {
                return Err((key(k), "must be more than 0".into()));
            }
        }
        if let Some(tls) = &b.tls {
            for (k, file) in [
                ("tls.cert_file", &tls.cert_file),
                ("tls.key_file", &tls.key_file),
            ] {
                if !file.is_file() {
                    return Err((key(k), format!("{} does not exist", file.display())));
                }
            }
            crate::net::tls::load_certified_key(tls).map_err(|e| (key("tls"), e.to_string()))?;
        }
        if let Some(name) = &b.anonymous_user
            && !config.users.iter().any(|u| &u.name == name)
        {
            return Err((key("anonymous_user"), format!("no user is named {name:?}")));
        }
        if let Some(r) = &b.rate_limit {
            if !(r.requests_per_second > 0.0 && r.requests_per_second.is_finite()) {
                return Err((
                    key("rate_limit.requests_per_second"),
                    "must be more than 0".into(),
                ));
            }
            if r.burst == 0 {
                return Err((key("rate_limit.burst"), "must be at least 1".into()));
            }
        }
        if let Some(d) = &b.defender {
            if d.max_failures == 0 {
                return Err((key("defender.max_failures"), "must be at least 1".into()));
            }
            if d.window.0.is_zero() || d.ban_time.0.is_zero() {
                return Err((
                    key("defender"),
                    "window and ban_time must be more than 0".into(),
                ));
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, user) in config.users.iter().enumerate() {
        if i < main_users {
            validate_user(user).map_err(|(k, reason)| (format!("users[{i}].{k}"), reason))?;
        }
        if !names.insert(user.name.as_str()) {
            return Err((
                format!("users[{i}].name"),
                format!("user {:?} is defined twice", user.name),
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_user(user: &UserConfig) -> Result<(), Invalid> {
    let err = |key: &str, reason: String| Err((key.to_owned(), reason));
    if user.name.is_empty() || user.name.contains(':') || user.name.chars().any(char::is_control) {
        return err(
            "name",
            format!(
                "{:?}: a user name must be non-empty, without ':' or control characters",
                user.name
            ),
        );
    }
    if let Some(hash) = &user.password_hash {
        crate::gate::users::check_phc(hash)
            .map_err(|e| ("password_hash".to_owned(), e.to_string()))?;
    }
    user.home
        .validate()
        .map_err(|e| ("home".to_owned(), e.to_string()))?;
    for (dir, list) in &user.permissions {
        let normal =
            normalise_dir(dir).map_err(|e| (format!("permissions.{dir}"), e.to_string()))?;
        if &normal != dir {
            return err(
                &format!("permissions.{dir}"),
                format!("write the directory as {normal:?}"),
            );
        }
        if list.is_empty() {
            // An empty list is allowed: it means "nothing here".
        }
    }
    for (key, value) in [
        ("quota_bytes", user.quota_bytes),
        ("max_upload_size", user.max_upload_size),
        ("upload_bandwidth", user.upload_bandwidth),
        ("download_bandwidth", user.download_bandwidth),
    ] {
        if value.is_some_and(|v| v.0 == 0) {
            return err(
                key,
                "must be more than 0 (leave it out for no limit)".into(),
            );
        }
    }
    if user.quota_files == Some(0) {
        return err(
            "quota_files",
            "must be more than 0 (leave it out for no limit)".into(),
        );
    }
    Ok(())
}
