//! The sha256 of what a transfer moves, computed the same way on this machine and on a host. A
//! file's is the sha256 of its bytes. A folder's is the sha256 of the listing
//! `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum` prints inside it: one
//! `<sha256 of the file>  ./<relative path>` line per regular file, in byte order of the paths.
//! Empty folders, symbolic links, modes and owners do not count.

use std::io::{self, Read as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::hosts::hex;

/// The POSIX shell function `tree_sha256 DIR` that prints a folder's sha256 on a host.
pub(super) const TREE_SHA256_SH: &str = "tree_sha256() { (cd -- \"$1\" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1); }";

/// The sha256 of a file's bytes.
pub(super) fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The sha256 of bytes.
pub(super) fn bytes_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The sha256 of a folder (see the module's documentation).
pub(super) fn tree_sha256(dir: &Path) -> io::Result<String> {
    let mut files = Vec::new();
    collect(dir, b".", &mut files)?;
    files.sort();
    let mut listing = Vec::new();
    for relative in &files {
        let path = dir.join(std::ffi::OsStr::from_bytes(&relative[2..]));
        listing.extend_from_slice(file_sha256(&path)?.as_bytes());
        listing.extend_from_slice(b"  ");
        listing.extend_from_slice(relative);
        listing.push(b'\n');
    }
    Ok(bytes_sha256(&listing))
}

/// Regular files below `dir` as `./relative/path` bytes (links are not followed).
fn collect(dir: &Path, prefix: &[u8], out: &mut Vec<Vec<u8>>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name.iter().any(|b| matches!(b, b'\n' | b'\r' | b'\\')) {
            // sha256sum escapes such names, so a host would list them differently.
            return Err(io::Error::other(format!(
                "{} has a name with a newline or a backslash, which a folder transfer does not take",
                entry.path().display()
            )));
        }
        let mut relative = prefix.to_vec();
        relative.push(b'/');
        relative.extend_from_slice(name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), &relative, out)?;
        } else if kind.is_file() {
            out.push(relative);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_hash_is_the_hash_of_the_sha256sum_listing_in_byte_order() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("a")).expect("a folder");
        std::fs::create_dir_all(dir.path().join("empty")).expect("a folder");
        std::fs::write(dir.path().join("a/b"), "two\n").expect("a file");
        std::fs::write(dir.path().join("a.txt"), "one\n").expect("a file");
        let listing = format!(
            "{}  ./a.txt\n{}  ./a/b\n",
            bytes_sha256(b"one\n"),
            bytes_sha256(b"two\n")
        );
        assert_eq!(
            tree_sha256(dir.path()).expect("hashable"),
            bytes_sha256(listing.as_bytes())
        );
        assert_eq!(
            file_sha256(&dir.path().join("a.txt")).expect("hashable"),
            bytes_sha256(b"one\n")
        );
    }

    #[test]
    fn the_shell_function_gives_the_same_folder_hash() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("x/y")).expect("a folder");
        std::fs::write(dir.path().join("x/y/z"), "deep").expect("a file");
        std::fs::write(dir.path().join("x-1"), "").expect("a file");
        std::fs::write(dir.path().join("B"), "upper").expect("a file");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{TREE_SHA256_SH}; tree_sha256 \"$1\""))
            .arg("sh")
            .arg(dir.path())
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            tree_sha256(dir.path()).expect("hashable")
        );
    }
}
