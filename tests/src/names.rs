//! Unique names, so that tests can run in parallel and again without finding each other's
//! images: every image name, secret value and probe directory carries a fresh suffix.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// 12 lowercase hex digits, different on every call (also across processes).
pub fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// A scenario name as an image-name component (`secret_mounts` → `secret-mounts`).
pub fn component(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_values_differ() {
        let a = unique();
        let b = unique();
        assert_ne!(a, b);
        assert_eq!(a.len(), 12);
    }

    #[test]
    fn components_are_valid_image_name_parts() {
        assert_eq!(component("Secret_Mounts"), "secret-mounts");
    }
}
