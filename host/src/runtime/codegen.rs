//! The wasmtime settings that shape compiled code.
//!
//! One definition for both users: the host's engine (`runtime.rs` adds the
//! instance allocator, which does not affect code) and the build script,
//! which precompiles the embedded handler with these settings so that the
//! host loads it instead of compiling it at every start. A precompiled
//! artifact only loads into an engine with the same settings, so they must
//! not be set anywhere else. This file is included by `build.rs` too: it may
//! use nothing but `wasmtime`.

use wasmtime::Config;

/// Code settings of every engine that runs the handler.
pub fn config() -> Config {
    let mut config = Config::new();
    // Guests are interrupted (to yield, and at their CPU-time deadline)
    // at epoch ticks; see runtime.rs.
    config.epoch_interruption(true);
    config
}
