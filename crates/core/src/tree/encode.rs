//! The byte encoding folded into the tree digest.
//!
//! Every variable-length field is length-prefixed and every fixed field has a
//! fixed width, so two different entry lists can never produce the same byte
//! stream (no "a" + "bc" vs "ab" + "c" ambiguity, no path that looks like a
//! separator). Integers are little-endian `u64` regardless of platform.

use sha2::{Digest, Sha256};

use super::{EntryKind, TreeEntry};

/// Version tag hashed first. Change it whenever the encoding, the selection
/// rules or the kind codes change, so old and new tags can never collide.
///
/// The encoding, all integers `u64` little-endian:
///
/// ```text
/// len(FORMAT_VERSION) FORMAT_VERSION
/// entry_count
/// for each entry, sorted by path bytes:
///     kind: u8            1 = file, 2 = executable file, 3 = symlink
///     len(path) path      UTF-8, '/'-separated, relative
///     digest: [u8; 32]    SHA-256 of the content (of the link target)
/// ```
pub const FORMAT_VERSION: &str = "imagespec-tree-v1";

const KIND_FILE: u8 = 1;
const KIND_EXECUTABLE: u8 = 2;
const KIND_SYMLINK: u8 = 3;

/// The kind byte of an entry.
fn kind_code(entry: &TreeEntry) -> u8 {
    match (entry.kind, entry.executable) {
        (EntryKind::File, false) => KIND_FILE,
        (EntryKind::File, true) => KIND_EXECUTABLE,
        (EntryKind::Symlink, _) => KIND_SYMLINK,
    }
}

/// SHA-256 of the encoding above. `entries` must already be sorted by path.
pub(super) fn tree_digest(entries: &[TreeEntry]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    put_bytes(&mut hasher, FORMAT_VERSION.as_bytes());
    put_u64(&mut hasher, entries.len() as u64);
    for entry in entries {
        hasher.update([kind_code(entry)]);
        put_bytes(&mut hasher, entry.path.as_bytes());
        hasher.update(entry.digest);
    }
    hasher.finalize().into()
}

fn put_u64(hasher: &mut Sha256, n: u64) {
    hasher.update(n.to_le_bytes());
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    put_u64(hasher, bytes.len() as u64);
    hasher.update(bytes);
}
