//! argon2id password hashes: making them, checking their form, and
//! verifying a password in working memory that goes back to the OS.
//!
//! A verification with the default parameters works in 19 MiB. Taken from
//! the heap, that memory stayed with the allocator once freed (in the
//! arenas of the blocking-pool threads that ran the checks), so bursts of
//! logins grew the server for good (from 42 MiB to almost 3 GiB after 500
//! simultaneous logins in five waves, `tests/tests/login_burst.rs`). Each
//! verification maps its working memory instead, and unmaps it when done.
//! How many run at once is bounded by [`super::login`].

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use memmap2::MmapMut;
use subtle::ConstantTimeEq;

/// Whether `password` is the one hashed in the PHC string `phc`. A
/// malformed hash, or one whose memory cannot be mapped, matches nothing.
pub fn verify(phc: &str, password: &str) -> bool {
    matches(phc, password).unwrap_or(false)
}

fn matches(phc: &str, password: &str) -> Option<bool> {
    let hash = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .ok()?;
    let params = Params::try_from(&hash).ok()?;
    let expected = hash.hash?;
    let mut salt = [0; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    let memory = WorkingMemory::new(params.block_count())?;
    let mut computed = vec![0; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, memory)
        .ok()?;
    Some(computed.ct_eq(expected.as_bytes()).into())
}

/// argon2's working memory: an anonymous mapping for one computation,
/// unmapped (given back to the OS) when dropped.
struct WorkingMemory {
    map: MmapMut,
    blocks: usize,
}

// The cast in `as_mut` relies on blocks being exactly `Block::SIZE` bytes.
const _: () = assert!(size_of::<Block>() == Block::SIZE);

impl WorkingMemory {
    fn new(blocks: usize) -> Option<WorkingMemory> {
        let map = MmapMut::map_anon(blocks.checked_mul(Block::SIZE)?).ok()?;
        Some(WorkingMemory { map, blocks })
    }
}

impl AsMut<[Block]> for WorkingMemory {
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping is `blocks * Block::SIZE` bytes long, page
        // aligned (a block needs 64), zero-filled, and mutably borrowed for
        // the slice's life; a block is plain `u64`s, valid for any bits.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().cast(), self.blocks) }
    }
}

/// A hash of a random password, with the default parameters: what the
/// password of an unknown user is checked against.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()))
}

/// A PHC argon2id hash of `password` with a random salt and the default
/// parameters (m=19 MiB, t=2, p=1).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Checks that `hash` is a PHC string of an argon2id hash.
pub fn check_phc(hash: &str) -> crate::error::Result<()> {
    let parsed = PasswordHash::new(hash).map_err(|e| {
        format!("not a PHC hash string ({e}); make one with `edgedav hash-password`")
    })?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(crate::error::invalid!(
            "the algorithm is {}, expected argon2id; make one with `edgedav hash-password`",
            parsed.algorithm
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("the hash string has no salt or no hash".into());
    }
    // Each verification maps this much memory; a configured hash must not
    // let a burst of logins exhaust the machine.
    let params = Params::try_from(&parsed).map_err(|e| format!("bad argon2 parameters ({e})"))?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return Err(crate::error::invalid!(
            "the hash costs {} KiB of memory per login, more than the {MAX_MEMORY_KIB} KiB \
             edgedav allows; make one with `edgedav hash-password`",
            params.m_cost()
        ));
    }
    Ok(())
}

/// The most memory (KiB) one password verification may use: 256 MiB, far
/// above the 19 MiB of the hashes `hash-password` makes.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$v=19$"));
        check_phc(&hash).unwrap();
        assert!(verify(&hash, "correct horse"));
        assert!(!verify(&hash, "correct horse "));
        assert!(!verify("hunter2", "hunter2"));
        assert!(check_phc("$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2g").is_err());
        assert!(check_phc("hunter2").is_err());
        let greedy = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(
            check_phc(greedy)
                .unwrap_err()
                .to_string()
                .contains("KiB of memory")
        );
    }

    /// Hashes made elsewhere (other parameters, another variant) verify
    /// like the crate's own verifier says.
    #[test]
    fn foreign_hashes_verify() {
        use argon2::password_hash::PasswordVerifier;
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        for (algorithm, m, t, p) in [
            (Algorithm::Argon2id, 8, 1, 1),
            (Algorithm::Argon2i, 64, 3, 2),
            (Algorithm::Argon2d, 32, 2, 4),
        ] {
            let params = Params::new(m, t, p, Some(24)).unwrap();
            let argon2 = Argon2::new(algorithm, Version::V0x13, params);
            let phc = argon2.hash_password(b"pw", &salt).unwrap().to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(argon2.verify_password(b"pw", &parsed).is_ok());
            assert!(verify(&phc, "pw"), "{phc}");
            assert!(!verify(&phc, "pW"), "{phc}");
        }
    }
}
