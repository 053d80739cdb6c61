//! The deployments of the compositions, served by the one process harness
//! of `edgedav_tests` ([`Server::deploy`]).

use super::*;

impl EdgeEnv {
    /// Stock `wasmtime serve` on the fs composition.
    pub(super) fn fs(&self) -> Deployment {
        Deployment::Wasmtime {
            wasmtime: self.wasmtime.clone(),
            component: self.fs_wasm.clone(),
        }
    }

    /// The Spin test host on the Spin composition.
    pub(super) fn spin(&self) -> Deployment {
        Deployment::Spin {
            testhost: self.spin_testhost.clone(),
            component: self.spin_wasm.clone(),
        }
    }
}

/// A scratch directory, for what is not served.
pub(super) fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("edgedav-edge-")
        .tempdir()
        .unwrap()
}
