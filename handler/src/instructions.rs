//! The requests that `scripts/bench/instructions.sh` counts instructions
//! of, natively under `valgrind --tool=callgrind`: on a machine shared with
//! other jobs, timings of the server move by a third between runs, while
//! the handler's instruction count per request is the same every time, so
//! a change to the handler's hot paths can be judged on it. The counts
//! include the in-memory store's work and the copying of the body into a
//! buffer, both the same before and after such a change.

use crate::testing::{Server, request};

/// PROPFIND of five properties common clients ask for.
const NAMED: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:resourcetype/><D:displayname/></D:prop></D:propfind>"#;

/// `ITERS` (default 1) requests of the kind `WHAT` names: `allprop` or
/// `named` (PROPFIND Depth 1 of a folder of 1,000 files of 4 KiB), `few`
/// (`named` of a folder of 5 such files, as people keep them) or `get`
/// (one of the 1,000 files). The script runs it with `ITERS=0` too and divides
/// the difference.
#[test]
#[ignore = "run by scripts/bench/instructions.sh under callgrind"]
fn requests() {
    let what = std::env::var("WHAT").unwrap_or_else(|_| "allprop".into());
    // `few` on a store of its own: the in-memory store lists a folder by
    // scanning every path it holds, which would count 1,000 others.
    let (folder, files) = match what.as_str() {
        "few" => ("/few", 5),
        _ => ("/small", 1000),
    };
    let s = Server::new();
    s.expect("MKCOL", folder, 201);
    let content = "x".repeat(4096);
    for i in 1..=files {
        assert_eq!(s.put(&format!("{folder}/f{i}.bin"), &content), 201);
    }
    let env = s.env();
    let iters: u32 = std::env::var("ITERS").map_or(1, |n| n.parse().expect("ITERS"));
    let (method, target, body, status) = match what.as_str() {
        "allprop" => ("PROPFIND", "/small/", "", 207),
        "named" => ("PROPFIND", "/small/", NAMED, 207),
        "few" => ("PROPFIND", "/few/", NAMED, 207),
        "get" => ("GET", "/small/f1.bin", "", 200),
        other => panic!("WHAT={other}: allprop, named, few or get"),
    };
    // One buffer for every body, reserved once, so that growing it is not
    // counted.
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    for _ in 0..iters {
        let request = request(method, target, &[("Depth", "1")], body.as_bytes());
        let response = crate::handle(&env, request);
        assert_eq!(response.status, status);
        out.clear();
        response.write_body(env.storage, &mut out).expect("body");
    }
}
