//! Bursts of simultaneous logins keep the server's memory bounded: argon2
//! (~19 MiB a verification) runs a few at a time in memory that goes back to
//! the OS, concurrent logins with the same credentials share one
//! verification, a wave of the same wrong password is answered from the
//! cache of recent failures, and a wave of distinct guesses, which must
//! each be verified, leaves no memory behind either.

use std::sync::Barrier;

use edgedav_tests::*;

const USER: &str = "burst";
const PASSWORD: &str = "burst-pw-8317";
/// Requests in one wave, all sent at the same moment.
const WAVE: usize = 100;
/// Waves of the wrong password.
const WRONG_WAVES: usize = 4;
/// A MiB in KiB, the unit of /proc/PID/status.
const MIB: u64 = 1024;

/// One user, the admin listener (for the verification counter), no
/// defender or rate limit (every wrong login must stay a plain 401), and
/// per-address limits above a wave (all of it comes from 127.0.0.1).
fn start() -> Server {
    let hash = hash_password(PASSWORD);
    Server::start_config(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[sandbox]
max_instances_per_ip = 1000
instance_wait = "120s"

[[bindings]]
listen = "127.0.0.1:0"
max_connections_per_ip = 1000

[[users]]
name = "{USER}"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
"#
    ))
}

/// Sends `WAVE` PROPFINDs, request `i` with `password(i)`, from as many
/// threads released together by a barrier; their statuses.
fn wave(s: &Server, password: impl Fn(usize) -> String + Sync) -> Vec<u16> {
    let barrier = Barrier::new(WAVE);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..WAVE)
            .map(|i| {
                let (barrier, password) = (&barrier, &password);
                scope.spawn(move || {
                    let request = s
                        .req_as(USER, &password(i), "PROPFIND", "/")
                        .header("Depth", "0");
                    barrier.wait();
                    request.exec().status
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// `edgedav_password_verifications_total` from the admin listener.
fn verifications(s: &Server) -> u64 {
    s.metric("edgedav_password_verifications_total")
        .expect("the verification counter") as u64
}

#[test]
fn login_bursts_keep_memory_bounded() {
    let s = start();
    // Warm up what every request needs (the component, connection
    // buffers) without logging in.
    s.req("OPTIONS", "/")
        .exec()
        .expect(&[200], "OPTIONS warm-up");
    let idle = s.status_kib("VmRSS");
    s.reset_peak_rss();

    let right = wave(&s, |_| PASSWORD.into());
    let after_right = s.status_kib("VmRSS");
    let right_verifications = verifications(&s);
    let mut wrong = Vec::new();
    for _ in 0..WRONG_WAVES {
        wrong.extend(wave(&s, |_| "not-the-password".into()));
    }
    let after_wrong = s.status_kib("VmRSS");
    let wrong_verifications = verifications(&s) - right_verifications;
    // Guesses: every password differs, so every one costs a verification.
    let guesses = wave(&s, |i| format!("guess-{i}"));
    let guess_verifications = verifications(&s) - right_verifications - wrong_verifications;
    let after = s.status_kib("VmRSS");
    let peak = s.status_kib("VmHWM");
    eprintln!(
        "RSS idle {} MiB, after {WAVE} right logins {} MiB, after {WRONG_WAVES}x{WAVE} wrong \
         {} MiB, after {WAVE} guesses {} MiB, peak {} MiB; argon2 verifications: \
         {right_verifications} right, {wrong_verifications} wrong, {guess_verifications} guesses",
        idle / MIB,
        after_right / MIB,
        after_wrong / MIB,
        after / MIB,
        peak / MIB,
    );

    let bad: Vec<_> = right
        .iter()
        .filter(|&&c| !(200..300).contains(&c))
        .collect();
    assert!(bad.is_empty(), "right password refused: {bad:?}");
    let bad: Vec<_> = wrong
        .iter()
        .chain(&guesses)
        .filter(|&&c| c != 401)
        .collect();
    assert!(bad.is_empty(), "wrong password not answered 401: {bad:?}");
    // Simultaneous logins with the same credentials share one verification.
    assert_eq!(
        right_verifications, 1,
        "verifications for {WAVE} right logins"
    );
    // A wave of one wrong password costs at most one verification (the
    // failure is remembered for a while, usually across all the waves).
    assert!(
        (1..=WRONG_WAVES as u64).contains(&wrong_verifications),
        "{wrong_verifications} verifications for {WRONG_WAVES} waves of a wrong password"
    );
    assert_eq!(
        guess_verifications, WAVE as u64,
        "verifications for {WAVE} guesses"
    );
    // Verifications run a few at a time, in memory given back afterwards.
    assert!(
        after < idle + 64 * MIB,
        "RSS grew from {} MiB to {} MiB after the bursts",
        idle / MIB,
        after / MIB
    );
    assert!(
        peak < idle + 100 * MIB,
        "RSS peaked at {} MiB during the bursts (idle {} MiB)",
        peak / MIB,
        idle / MIB
    );
}
