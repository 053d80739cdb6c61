//! Crash consistency of the local-disk store: the server is killed with
//! SIGKILL while twenty uploads are half sent, then started again on the
//! same root. Every file holds its old content or the complete new one
//! (never a prefix, never empty), a file being created is absent or
//! complete, and nothing staged outlives the restart: whole uploads are
//! anonymous files that die with the process, and what the dead server
//! staged under a name is swept. And what a power cut would leave: an
//! answered PUT, and every answered change of names and properties (MKCOL,
//! COPY, MOVE, DELETE, PROPPATCH), is on the disk of a journal-less ext4.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use edgedav_tests::*;

/// Uploads in flight when the server dies; the even ones replace a file.
const UPLOADS: usize = 20;
/// Size of every new body.
const NEW_LEN: usize = 3 * 1024 * 1024;
/// Prefix of files staged beside their target.
const UPLOAD_PREFIX: &str = ".edgedav-upload-";
/// The store's staging directory, when it has one.
const STAGING: &str = ".edgedav/uploads";
/// Bound on waiting for the server to show it is writing every upload.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(120);

fn path(i: usize) -> String {
    format!("/crash/file-{i:02}.bin")
}

fn replaces(i: usize) -> bool {
    i.is_multiple_of(2)
}

/// The old content of a replaced file (sizes differ from the new body, so
/// a mix of both cannot pass for either).
fn old_content(i: usize) -> Vec<u8> {
    pseudo_random(1000 + 40_000 * i, i as u64)
}

fn new_content(i: usize) -> Vec<u8> {
    pseudo_random(NEW_LEN, 1000 + i as u64)
}

/// How much of upload `i`'s body is sent before the crash: from a sliver
/// to all but the last byte.
fn sent_len(i: usize) -> usize {
    (NEW_LEN / UPLOADS * i).clamp(64 * 1024, NEW_LEN - 1)
}

/// Sends the head of a PUT of `path` and the first `sent` bytes of `body`,
/// tells `sent_tx`, then reads until the server's death closes the socket.
fn partial_put(port: u16, path: &str, body: &[u8], sent: usize, sent_tx: mpsc::Sender<()>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PROGRESS_TIMEOUT * 2)).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..sent]).unwrap();
    sent_tx.send(()).unwrap();
    // The server answers nothing before the rest of the body, so this
    // returns when the kill closes the connection.
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        answer.is_empty(),
        "{path}: an answer to a half-sent PUT: {:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// Files the server has staged: anything in the staging directory and
/// anything under the root named with the staging prefix.
fn staged_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, staging: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, staging, out);
            } else if dir == staging
                || entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(UPLOAD_PREFIX)
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &root.join(STAGING), &mut out);
    out
}

/// Waits until the server is writing every upload.
fn wait_for_progress(s: &Server) {
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    loop {
        // The server opens nothing else below the root meanwhile.
        let writing = s
            .open_files_below(&s.root())
            .into_iter()
            .filter(|&len| len > 0)
            .count();
        if writing >= UPLOADS {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {PROGRESS_TIMEOUT:?} the server writes {writing} of {UPLOADS} uploads"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn uploads_cut_by_a_kill_leave_old_or_complete_files() {
    let mut s = Server::start();
    s.create_dir("/crash/");
    for i in (0..UPLOADS).filter(|&i| replaces(i)) {
        s.create(&path(i), old_content(i));
    }
    let bodies: Vec<Vec<u8>> = (0..UPLOADS).map(new_content).collect();

    let (sent_tx, sent_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let clients: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let sent_tx = sent_tx.clone();
                let port = s.port;
                scope.spawn(move || partial_put(port, &path(i), body, sent_len(i), sent_tx))
            })
            .collect();
        for _ in 0..UPLOADS {
            sent_rx.recv().expect("every client sends part of its body");
        }
        wait_for_progress(&s);
        s.signal(libc::SIGKILL);
        assert!(
            s.wait_exit(Duration::from_secs(60)).is_some(),
            "the server survived SIGKILL"
        );
        for client in clients {
            client.join().unwrap();
        }
    });

    // What the dead server staged is swept once older than the staging's
    // minimum age (which protects a live writer between creating its file
    // and locking it): age it, as if the restart came a while later.
    let staged = staged_files(&s.root());
    eprintln!("{} staged files left by the killed server", staged.len());
    for p in &staged {
        let file = std::fs::File::options().write(true).open(p).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }
    s.restart();

    for (i, body) in bodies.iter().enumerate() {
        let on_disk = std::fs::read(s.root().join(&path(i)[1..]));
        let served = s.get(&path(i));
        if replaces(i) {
            let content = on_disk.unwrap_or_else(|e| panic!("{}: lost: {e}", path(i)));
            assert!(
                content == old_content(i) || &content == body,
                "{}: {} bytes on disk, neither the old {} nor the new {}",
                path(i),
                content.len(),
                old_content(i).len(),
                NEW_LEN
            );
            served.expect(&[200], "GET a replaced file");
            assert!(
                served.body == content,
                "{}: served differs from disk",
                path(i)
            );
        } else {
            match on_disk {
                Ok(content) => {
                    assert!(
                        &content == body,
                        "{}: a created file of {} bytes, not the complete {NEW_LEN}",
                        path(i),
                        content.len()
                    );
                    served.expect(&[200], "GET a created file");
                }
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{}", path(i));
                    served.expect(&[404], "GET a file never created");
                }
            }
        }
    }

    // Listing the collection also sweeps files staged beside their target.
    s.propfind("/crash/", "1", None).expect(&[207], "PROPFIND");
    let left = staged_files(&s.root());
    assert!(
        left.is_empty(),
        "staged files left after the restart: {left:#?}\nserver log:\n{}",
        s.log()
    );
}

/// A server whose user `u` (password `pw`) keeps their files in `/store`
/// of `disk`.
fn serve(disk: &Ext4Image) -> Server {
    Server::start_config(&format!(
        "[[bindings]]\nlisten = \"127.0.0.1:0\"\n\n[[users]]\nname = \"u\"\npassword_hash = \"{}\"\nhome = {{ backend = \"local\", path = \"{}\" }}\n",
        hash_password("pw"),
        disk.mount_point().join("store").display()
    ))
}

/// When a PUT is answered, the disk holds the file whole and named: its
/// content, its name in the collection, and its link count, which a
/// journal-less ext4 writes only with the file's own fsync (a file
/// published by linking an anonymous one raises it from 0: without that
/// fsync a power cut leaves a name the kernel refuses as a deleted file).
#[test]
fn an_answered_put_is_on_the_disk_whole() {
    let test = "an_answered_put_is_on_the_disk_whole";
    let Some(disk) = Ext4Image::mount(test) else {
        return;
    };
    let s = serve(&disk);
    for (round, status) in [(1, 201), (2, 204)] {
        let body = format!("round {round} ").repeat(1000);
        s.req_as("u", "pw", "PUT", "/f")
            .body(body.clone())
            .exec()
            .expect(&[status], "PUT");
        let (links, content) = disk.on_disk("/store/f");
        assert_eq!(links, 1, "round {round}: the link count on the disk");
        assert!(
            content == body.as_bytes(),
            "round {round}: the content on the disk"
        );
    }
}

/// When a MKCOL, COPY, MOVE, DELETE or PROPPATCH is answered, its outcome
/// is on the disk (see [`answered_changes_are_on_the_disk`]).
#[test]
fn answered_changes_of_names_and_properties_are_on_the_disk() {
    let test = "answered_changes_of_names_and_properties_are_on_the_disk";
    let Some(disk) = Ext4Image::mount(test) else {
        return;
    };
    let s = serve(&disk);
    answered_changes_are_on_the_disk(&disk, &s, "/store", |method, path| {
        s.req_as("u", "pw", method, path)
    });
}
