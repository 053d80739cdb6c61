//! Benchmark of the S3 backend against a real S3 server (Garage): run by
//! `scripts/bench-s3.sh`, which starts Garage and calls
//!
//!   cargo test --release -p edgedav-tests --test s3_bench -- --ignored --nocapture
//!
//! It prints, for a Depth-1 PROPFIND of a collection of N objects (N = 10,
//! 1,000, 10,000; `EDGEDAV_BENCH_SIZES` changes them), the S3 requests the
//! server made (read from its own request counter, which it logs with
//! `--s3-log-requests`) and the time taken; then the server's peak RSS
//! growth while a 1 GiB file (`EDGEDAV_S3_BIG_MIB`) is PUT and read back.
//! It fails when a figure misses the targets: at most ceil(n/1000) + 1 S3
//! requests per Depth-1 PROPFIND of the usual client properties, and RSS
//! growth under 64 MiB.

use std::io::Read;
use std::time::{Duration, Instant};

use edgedav_tests::*;

const MIB: u64 = 1 << 20;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

struct Bench {
    server: Server,
}

impl Bench {
    fn start() -> Option<Bench> {
        let Some(endpoint) = env("EDGEDAV_S3_ENDPOINT") else {
            edgedav_tests::skip(
                "\n*** SKIPPED s3_bench: EDGEDAV_S3_ENDPOINT is not set; run scripts/bench-s3.sh ***\n\n",
            );
            return None;
        };
        let bucket = env("EDGEDAV_S3_BUCKET").unwrap_or_else(|| "edgedav".into());
        let region = env("EDGEDAV_S3_REGION").unwrap_or_else(|| "garage".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("bench/{}-{nanos}", std::process::id());
        let server = Server::start_with(&[
            "--s3-bucket",
            &bucket,
            "--s3-prefix",
            &prefix,
            "--s3-endpoint",
            &endpoint,
            "--s3-region",
            &region,
            "--s3-path-style",
            "--s3-log-requests",
        ]);
        Some(Bench { server })
    }

    /// The S3 request lines logged so far: their operation names.
    fn s3_operations(&self) -> Vec<String> {
        self.server
            .log()
            .lines()
            .filter(|l| l.contains("s3 request"))
            .filter_map(|l| {
                let i = l.find(" operation=")? + " operation=".len();
                Some(l[i..].split_whitespace().next()?.to_owned())
            })
            .collect()
    }

    /// Runs `f` and returns the S3 operations it caused, with its duration.
    fn measure(&self, f: impl FnOnce()) -> (Vec<String>, Duration) {
        let before = self.s3_operations().len();
        let started = Instant::now();
        f();
        let elapsed = started.elapsed();
        let mut operations = self.s3_operations();
        operations.drain(..before);
        (operations, elapsed)
    }
}

fn summary(operations: &[String]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for o in operations {
        *counts.entry(o).or_default() += 1;
    }
    counts
        .iter()
        .map(|(o, n)| format!("{o} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const CLIENT_PROPS: [(&str, &str); 5] = [
    (DAV, "resourcetype"),
    (DAV, "getcontentlength"),
    (DAV, "getlastmodified"),
    (DAV, "getetag"),
    (DAV, "getcontenttype"),
];

#[test]
#[ignore = "benchmark: run scripts/bench-s3.sh"]
fn s3_bench() {
    let Some(b) = Bench::start() else { return };
    let s = &b.server;
    let sizes: Vec<usize> = env("EDGEDAV_BENCH_SIZES")
        .map(|v| v.split(',').map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10, 1_000, 10_000]);

    println!("\n## Depth-1 PROPFIND on the S3 backend (Garage on 127.0.0.1)\n");
    println!(
        "| N | properties | S3 requests | bound ceil(N/1000)+1 | time (best of 3) | S3 operations |"
    );
    println!("|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for &n in &sizes {
        let dir = format!("/n{n}");
        s.create_dir(&format!("{dir}/"));
        let fill = Instant::now();
        std::thread::scope(|scope| {
            let threads = 8.min(n);
            for t in 0..threads {
                let dir = &dir;
                scope.spawn(move || {
                    for i in (t..n).step_by(threads) {
                        s.put(&format!("{dir}/file-{i:06}.txt"), format!("file {i}"))
                            .expect(&[201], "PUT");
                    }
                });
            }
        });
        eprintln!("(created {n} files in {:?})", fill.elapsed());

        let bound = n.div_ceil(1000) as u64 + 1;
        let selections: Vec<(&str, String)> = if n <= 1_000 {
            vec![
                ("5 client props", propfind_prop(&CLIENT_PROPS)),
                ("allprop", ALLPROP.to_owned()),
            ]
        } else {
            vec![("5 client props", propfind_prop(&CLIENT_PROPS))]
        };
        for (label, body) in selections {
            let mut best = Duration::MAX;
            let mut requests = Vec::new();
            for _ in 0..3 {
                let (ops, elapsed) = b.measure(|| {
                    let r = s.propfind(&format!("{dir}/"), "1", Some(&body));
                    r.expect(&[207], "PROPFIND");
                    assert_eq!(r.multistatus().len(), n + 1, "every member listed");
                });
                best = best.min(elapsed);
                requests = ops;
            }
            println!(
                "| {n} | {label} | {} | {} | {:.1} ms | {} |",
                requests.len(),
                // allprop reads every member's dead properties: not bounded.
                if label == "allprop" {
                    "n/a".to_owned()
                } else {
                    bound.to_string()
                },
                best.as_secs_f64() * 1000.0,
                summary(&requests)
            );
            if label != "allprop" && requests.len() as u64 > bound {
                failures.push(format!(
                    "PROPFIND of {n}: {} S3 requests > {bound}",
                    requests.len()
                ));
            }
        }
    }

    let mib: u64 = env("EDGEDAV_S3_BIG_MIB")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib * MIB;
    println!("\n## {mib} MiB PUT and GET: host (edgedav) memory\n");
    println!("| transfer | time | MiB/s | RSS before | peak RSS | growth | S3 operations |");
    println!("|---|---|---|---|---|---|---|");
    let client = Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let url = s.url("/big.bin");
    let data = |pos: u64| (pos.wrapping_mul(2654435761) >> 7) as u8;
    struct Gen<F: Fn(u64) -> u8> {
        pos: u64,
        len: u64,
        data: F,
    }
    impl<F: Fn(u64) -> u8> Read for Gen<F> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.len - self.pos) as usize;
            for (i, x) in buf[..n].iter_mut().enumerate() {
                *x = (self.data)(self.pos + i as u64);
            }
            self.pos += n as u64;
            Ok(n)
        }
    }
    for transfer in ["PUT", "GET"] {
        let before = b.server.status_kib("VmRSS");
        b.server.reset_peak_rss();
        let (ops, elapsed) = b.measure(|| {
            if transfer == "PUT" {
                let r = client
                    .put(&url)
                    .body(Body::sized(
                        Gen {
                            pos: 0,
                            len: size,
                            data,
                        },
                        size,
                    ))
                    .send()
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
            } else {
                let mut r = client.get(&url).send().unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let mut buf = vec![0; MIB as usize];
                let mut pos = 0;
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    assert!(
                        buf[..n]
                            .iter()
                            .enumerate()
                            .all(|(i, x)| *x == data(pos + i as u64)),
                        "content at {pos}"
                    );
                    pos += n as u64;
                }
                assert_eq!(pos, size);
            }
        });
        let peak = b.server.status_kib("VmHWM");
        let growth = peak.saturating_sub(before);
        println!(
            "| {transfer} | {:.1} s | {:.0} | {} MiB | {} MiB | {:.1} MiB | {} |",
            elapsed.as_secs_f64(),
            size as f64 / MIB as f64 / elapsed.as_secs_f64(),
            before / 1024,
            peak / 1024,
            growth as f64 / 1024.0,
            summary(&ops)
        );
        if growth >= 64 * 1024 {
            failures.push(format!("{transfer} of {mib} MiB: RSS grew by {growth} KiB"));
        }
    }
    println!();
    assert!(failures.is_empty(), "targets missed: {failures:#?}");
}
