//! The composed files themselves: the handler they embed, their worlds, and the adapters against the storage conformance suite.

use super::*;

/// Both guest adapters, called directly through their `edgedav:dav/storage`
/// exports, pass the storage conformance suite (`conformance/`) that the
/// native backends and the in-memory store pass.
#[test]
fn both_adapters_pass_the_storage_conformance_suite() {
    let Some(env) = edge_env("both_adapters_pass_the_storage_conformance_suite") else {
        return;
    };
    for adapter in [&env.fs_adapter, &env.spin_adapter] {
        let dir = scratch();
        let out = Command::new(&env.spin_testhost)
            .arg("--conformance")
            .arg(adapter)
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.lines().any(|line| line == "0 failed cases"),
            "{}:\n{stdout}{}",
            adapter.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_composed_handler_is_the_file_the_native_host_embeds() {
    let Some(env) = edge_env("the_composed_handler_is_the_file_the_native_host_embeds") else {
        return;
    };
    let handler = std::fs::read(&env.handler_wasm).unwrap();
    let host_bin = binary();
    let host = std::fs::read(&host_bin).unwrap();
    assert!(
        contains(&host, &handler),
        "{} does not embed {} {}: rebuild the host (`cargo build --release -p edgedav`) after the handler",
        host_bin.display(),
        env.handler_wasm.display(),
        digest(&handler)
    );
    // wac embeds the plugged components whole: both compositions carry the
    // handler file byte for byte.
    for composed in [&env.fs_wasm, &env.spin_wasm] {
        let bytes = std::fs::read(composed).unwrap();
        assert!(
            contains(&bytes, &handler),
            "{} does not contain the handler {}: recompose with scripts/edge.sh",
            composed.display(),
            digest(&handler)
        );
    }
}

// ---------------------------------------------------------------- worlds

pub(super) fn wit_lines(env: &EdgeEnv, file: &Path, kind: &str) -> Vec<String> {
    let out = Command::new(&env.wasm_tools)
        .arg("component")
        .arg("wit")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wasm-tools component wit {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("  {kind} ");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.strip_prefix(&prefix)
                .map(|s| s.trim_end_matches(';').to_owned())
        })
        .collect()
}

#[test]
fn fs_composition_imports_only_wasi_and_exports_only_the_http_handler() {
    let Some(env) = edge_env("fs_composition_imports_only_wasi_and_exports_only_the_http_handler")
    else {
        return;
    };
    let imports = wit_lines(&env, &env.fs_wasm, "import");
    assert!(!imports.is_empty());
    let foreign: Vec<_> = imports.iter().filter(|i| !i.starts_with("wasi:")).collect();
    assert!(foreign.is_empty(), "non-WASI imports: {foreign:?}");
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:filesystem/")),
        "{imports:?}"
    );
    assert_eq!(
        wit_lines(&env, &env.fs_wasm, "export"),
        ["wasi:http/incoming-handler@0.2.6"]
    );
    // The Spin one: WASI plus Spin's SQLite, nothing of edgedav:dav left.
    let imports = wit_lines(&env, &env.spin_wasm, "import");
    let foreign: Vec<_> = imports
        .iter()
        .filter(|i| !i.starts_with("wasi:") && !i.starts_with("spin:sqlite/"))
        .collect();
    assert!(foreign.is_empty(), "unexpected imports: {foreign:?}");
    assert_eq!(
        wit_lines(&env, &env.spin_wasm, "export"),
        ["wasi:http/incoming-handler@0.2.6"]
    );
}

pub(super) fn targets(env: &EdgeEnv, world: &str, file: &Path) -> (bool, String) {
    let out = Command::new(&env.wasm_tools)
        .args(["component", "targets", "--world", world])
        .arg(&env.spin_wit)
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn spin_composition_targets_spins_http_trigger_world() {
    let Some(env) = edge_env("spin_composition_targets_spins_http_trigger_world") else {
        return;
    };
    let (ok, err) = targets(&env, &env.spin_world, &env.spin_wasm);
    assert!(
        ok,
        "{} does not target {}: {err}",
        env.spin_wasm.display(),
        env.spin_world
    );
    let (ok, err) = targets(&env, "spin:up/platform@3.6.0", &env.spin_wasm);
    assert!(ok, "imports outside spin:up/platform@3.6.0: {err}");
    // The check discriminates: the bare handler imports edgedav:dav, which
    // Spin does not provide.
    let (ok, err) = targets(&env, &env.spin_world, &env.handler_wasm);
    assert!(!ok, "the bare handler passed the Spin check");
    assert!(err.contains("edgedav:dav"), "unexpected failure: {err}");
}
