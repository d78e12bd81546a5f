//! `upload` and `download`: a file or folder moved over the host's connection.
//!
//! Both sides are compared first (sha256, [`super::digest`]): an identical destination is left
//! alone and nothing is sent. Otherwise the data goes to a temporary name beside the
//! destination (`.NAME.runbook-…`), is checked against the sha256 of the source once it has
//! arrived, and only then renamed over the destination: `dest` is never a half file. A folder
//! moves as a tar stream and replaces the old one by two renames (old aside, new in place), so
//! it is never half written either. The destination's folder must exist: nothing is created
//! silently above `dest` (a misspelt path fails instead of growing a tree).
//!
//! File contents travel on the session's standard input or output only; the remote command
//! lines name paths, never contents.

use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::connection::Connection;
use super::digest::{self, TREE_SHA256_SH};
use super::hosts::{Remote, hex};
use super::target::HostTarget;
use crate::exec::event::{Event, Stream};
use crate::exec::runtime::Runtime;
use crate::exec::secrets::withhold;
use crate::exec::step::Failure;
use crate::plan::NodeId;
use crate::template::shell_quote;

/// What `upload` sends.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A file or folder on this machine.
    Path(PathBuf),
    /// Rendered `content`, written as a file.
    Content(Vec<u8>),
}

/// What a path is, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    /// A file: its sha256 and mode (octal text, empty when unknown).
    File { sha256: String, mode: String },
    /// A folder: its sha256 and mode.
    Folder { sha256: String, mode: String },
    /// Nothing, in an existing folder.
    Missing,
    /// Nothing, and its folder does not exist either.
    NoFolder,
    /// Something else (a device, a socket).
    Other,
}

/// Prints what `$1` is on the host: `file SHA MODE`, `folder SHA MODE`, `missing`, `nofolder` or
/// `other`.
const PROBE_SH: &str = r#"p=$1
if [ -f "$p" ]; then printf 'file %s %s\n' "$(sha256sum < "$p" | cut -d' ' -f1)" "$(stat -c %a -- "$p" 2>/dev/null)"
elif [ -d "$p" ]; then printf 'folder %s %s\n' "$(tree_sha256 "$p")" "$(stat -c %a -- "$p" 2>/dev/null)"
elif [ -e "$p" ]; then echo other
elif [ -d "$(dirname -- "$p")" ]; then echo missing
else echo nofolder
fi"#;

/// Receives a file on standard input as `$1` (sha256 `$2`, mode `$3` or the old file's, or what
/// the umask gives a new file).
const RECEIVE_FILE_SH: &str = r#"p=$1 want=$2 mode=$3
d=$(dirname -- "$p") b=$(basename -- "$p")
u=$(umask)
umask 077
t="$d/.$b.runbook-$$"
trap 'rm -f -- "$t"' EXIT
cat > "$t" || exit 4
got=$(sha256sum < "$t" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "what arrived has sha256 $got, not $want" >&2; exit 5; }
if [ -z "$mode" ]; then
  if [ -f "$p" ]; then mode=$(stat -c %a -- "$p"); else mode=$(printf '%o' $(( 0666 & ~0$u ))); fi
fi
chmod "$mode" "$t" || exit 6
mv -f -- "$t" "$p" || exit 7
trap - EXIT"#;

/// Receives a folder as a tar stream on standard input as `$1` (sha256 `$2`, mode `$3`).
const RECEIVE_FOLDER_SH: &str = r#"p=$1 want=$2 mode=$3
d=$(dirname -- "$p") b=$(basename -- "$p")
t="$d/.$b.runbook-$$" o="$d/.$b.runbook-old-$$"
trap 'rm -rf -- "$t" "$o"' EXIT
mkdir -- "$t" || exit 4
tar -x -o -f - -C "$t" || exit 4
got=$(tree_sha256 "$t")
[ "$got" = "$want" ] || { echo "what arrived has sha256 $got, not $want" >&2; exit 5; }
if [ -n "$mode" ]; then chmod "$mode" "$t" || exit 6; fi
if [ -d "$p" ]; then mv -- "$p" "$o" || exit 7; fi
mv -- "$t" "$p" || { if [ -d "$o" ]; then mv -- "$o" "$p"; fi; exit 7; }
rm -rf -- "$o"
trap - EXIT"#;

impl Remote {
    /// Uploads a file, a folder or `content` to `dest` on a host (`dest` ending in `/`: into
    /// that folder, under the source's name); `mode` is set on what is written (else a file
    /// keeps the mode of the one it replaces). Returns `{changed, sha256}`: `changed` is false
    /// when `dest` was already identical (nothing was sent) — or, with `mode`, had that mode.
    pub async fn upload(
        &self,
        rt: &Runtime,
        id: &NodeId,
        host: &HostTarget,
        source: &UploadSource,
        dest: &str,
        mode: Option<u32>,
    ) -> Result<Value, Failure> {
        let fail = |what: String| Failure::new(format!("upload to {}:{dest}: {what}", host.key));
        let (local, name) = local_source(source).await.map_err(&fail)?;
        let path = match (dest.ends_with('/'), name) {
            (false, _) => dest.to_owned(),
            (true, Some(name)) => format!("{dest}{name}"),
            (true, None) => {
                return Err(fail(
                    "`content` needs a file name; `dest` ends in `/`".to_owned(),
                ));
            }
        };
        let mode_text = mode.map(|m| format!("{m:o}"));
        let transfer = async {
            let connection = self
                .connect_within(rt, host, tokio::time::Instant::now(), None)
                .await?;
            let found = probe(&connection, &path).await.map_err(&fail)?;
            let unchanged = match (&local, &found) {
                (
                    Found::File { sha256, .. },
                    Found::File {
                        sha256: there,
                        mode: m,
                    },
                )
                | (
                    Found::Folder { sha256, .. },
                    Found::Folder {
                        sha256: there,
                        mode: m,
                    },
                ) if sha256 == there => match &mode_text {
                    Some(want) if want.trim_start_matches('0') != m.trim_start_matches('0') => {
                        chmod(&connection, &path, want).await.map_err(&fail)?;
                        false
                    }
                    _ => true,
                },
                (_, Found::NoFolder) => {
                    return Err(fail(format!(
                        "no folder {} on the host (nothing above `dest` is created)",
                        parent_of(&path)
                    )));
                }
                (Found::File { .. }, Found::Folder { .. }) => {
                    return Err(fail(format!(
                        "{path} is a folder on the host; end `dest` with `/` to upload into it"
                    )));
                }
                (Found::Folder { .. }, Found::File { .. }) => {
                    return Err(fail(format!("{path} is a file on the host, not a folder")));
                }
                (_, Found::Other) => {
                    return Err(fail(format!(
                        "{path} on the host is neither a file nor a folder"
                    )));
                }
                _ => {
                    send(&connection, source, &local, &path, mode_text.as_deref())
                        .await
                        .map_err(&fail)?;
                    false
                }
            };
            tell(rt, id, unchanged, &format!("{}:{path}", host.key));
            Ok(json!({ "changed": !unchanged, "sha256": sha_of(&local) }))
        };
        tokio::select! {
            done = transfer => done,
            () = rt.cancel.cancelled() => Err(fail("interrupted; `dest` was left as it was".to_owned())),
        }
    }

    /// Downloads a file or folder `src` from a host to `dest` on this machine (`dest` ending in
    /// `/`: into that folder, under the source's name). A file gets the mode it has on the host.
    /// Returns `{changed, sha256}`: `changed` is false when `dest` was already identical
    /// (nothing was sent).
    pub async fn download(
        &self,
        rt: &Runtime,
        id: &NodeId,
        host: &HostTarget,
        src: &str,
        dest: &Path,
    ) -> Result<Value, Failure> {
        let fail = |what: String| Failure::new(format!("download from {}:{src}: {what}", host.key));
        let path = if dest.as_os_str().as_bytes().ends_with(b"/") {
            let name = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
            dest.join(name)
        } else {
            dest.to_path_buf()
        };
        let transfer = async {
            let connection = self
                .connect_within(rt, host, tokio::time::Instant::now(), None)
                .await?;
            let found = probe(&connection, src).await.map_err(&fail)?;
            let here = local_found(&path).await.map_err(&fail)?;
            let unchanged = match (&found, &here) {
                (Found::Missing | Found::NoFolder, _) => {
                    return Err(fail("no such file or folder on the host".to_owned()));
                }
                (Found::Other, _) => {
                    return Err(fail("neither a file nor a folder".to_owned()));
                }
                (_, Found::NoFolder) => {
                    return Err(fail(format!(
                        "no folder {} here (nothing above `dest` is created)",
                        path.parent().unwrap_or(Path::new("/")).display()
                    )));
                }
                (Found::File { sha256, .. }, Found::File { sha256: here, .. })
                | (Found::Folder { sha256, .. }, Found::Folder { sha256: here, .. })
                    if sha256 == here =>
                {
                    true
                }
                (Found::File { .. }, Found::Folder { .. }) => {
                    return Err(fail(format!(
                        "{} is a folder here; end `dest` with `/` to download into it",
                        path.display()
                    )));
                }
                (Found::Folder { .. }, Found::File { .. }) => {
                    return Err(fail(format!(
                        "{} is a file here, not a folder",
                        path.display()
                    )));
                }
                (_, Found::Other) => {
                    return Err(fail(format!(
                        "{} is neither a file nor a folder",
                        path.display()
                    )));
                }
                _ => {
                    receive(&connection, src, &found, &path)
                        .await
                        .map_err(&fail)?;
                    false
                }
            };
            tell(rt, id, unchanged, &path.display().to_string());
            Ok(json!({ "changed": !unchanged, "sha256": sha_of(&found) }))
        };
        tokio::select! {
            done = transfer => done,
            () = rt.cancel.cancelled() => Err(fail("interrupted; `dest` was left as it was".to_owned())),
        }
    }
}

/// One output line for the step: what the transfer did.
fn tell(rt: &Runtime, id: &NodeId, unchanged: bool, dest: &str) {
    rt.emit(Event::Output {
        id: id.to_owned(),
        stream: Stream::Stdout,
        line: if unchanged {
            format!("{dest} is already identical; nothing sent")
        } else {
            format!("{dest} written and verified")
        },
    });
}

fn sha_of(found: &Found) -> &str {
    match found {
        Found::File { sha256, .. } | Found::Folder { sha256, .. } => sha256,
        _ => "",
    }
}

fn parent_of(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/",
        Some((parent, _)) => parent,
        None => ".",
    }
}

/// What is uploaded, and its name (for a `dest` ending in `/`).
async fn local_source(source: &UploadSource) -> Result<(Found, Option<String>), String> {
    match source {
        UploadSource::Content(bytes) => Ok((
            Found::File {
                sha256: digest::bytes_sha256(bytes),
                mode: String::new(),
            },
            None,
        )),
        UploadSource::Path(path) => {
            let found = local_found(path).await?;
            match found {
                Found::File { .. } | Found::Folder { .. } => {}
                _ => return Err(format!("no file or folder {} here", path.display())),
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            Ok((found, name))
        }
    }
}

/// What a path is on this machine.
async fn local_found(path: &Path) -> Result<Found, String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let shown = path.display();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Found::File {
                sha256: digest::file_sha256(&path)
                    .map_err(|e| format!("failed to read {shown}: {e}"))?,
                mode: format!("{:o}", meta.permissions().mode() & 0o7777),
            }),
            Ok(meta) if meta.is_dir() => Ok(Found::Folder {
                sha256: digest::tree_sha256(&path)
                    .map_err(|e| format!("failed to read {shown}: {e}"))?,
                mode: format!("{:o}", meta.permissions().mode() & 0o7777),
            }),
            Ok(_) => Ok(Found::Other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let folder = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                Ok(if folder.is_dir() {
                    Found::Missing
                } else {
                    Found::NoFolder
                })
            }
            Err(e) => Err(format!("failed to inspect {shown}: {e}")),
        }
    })
    .await
    .map_err(|e| format!("failed to inspect a local path: {e}"))?
}

/// A session running `script` with `args` as `$1`… (a POSIX `sh -c`).
fn script_session(connection: &Connection, script: &str, args: &[&str]) -> tokio::process::Command {
    let mut line = format!(
        "exec sh -c {} sh",
        shell_quote(&format!("{TREE_SHA256_SH}\n{script}"))
    );
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    connection.session(&line)
}

/// What `path` is on the host.
async fn probe(connection: &Connection, path: &str) -> Result<Found, String> {
    let _permit = connection.permit().await;
    let out = script_session(connection, PROBE_SH, &[path])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("failed to start `ssh`: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let found = match (words.next(), words.next(), words.next()) {
        (Some("file"), Some(sha), mode) if sha.len() == 64 => Found::File {
            sha256: sha.to_owned(),
            mode: mode.unwrap_or_default().to_owned(),
        },
        (Some("folder"), Some(sha), mode) if sha.len() == 64 => Found::Folder {
            sha256: sha.to_owned(),
            mode: mode.unwrap_or_default().to_owned(),
        },
        (Some("missing"), ..) => Found::Missing,
        (Some("nofolder"), ..) => Found::NoFolder,
        (Some("other"), ..) => Found::Other,
        _ => return Err(session_error(connection, &out)),
    };
    Ok(found)
}

/// Sets the mode of `path` on the host.
async fn chmod(connection: &Connection, path: &str, mode: &str) -> Result<(), String> {
    let _permit = connection.permit().await;
    let out = script_session(connection, r#"chmod "$2" -- "$1""#, &[path, mode])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("failed to start `ssh`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(session_error(connection, &out))
    }
}

/// Sends the source to `path` on the host.
async fn send(
    connection: &Connection,
    source: &UploadSource,
    local: &Found,
    path: &str,
    mode: Option<&str>,
) -> Result<(), String> {
    let _permit = connection.permit().await;
    let (script, sha256) = match local {
        Found::Folder { sha256, .. } => (RECEIVE_FOLDER_SH, sha256),
        Found::File { sha256, .. } => (RECEIVE_FILE_SH, sha256),
        _ => return Err("nothing to send".to_owned()),
    };
    let mut child = script_session(connection, script, &[path, sha256, mode.unwrap_or("")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to start `ssh`: {e}"))?;
    let mut input = child
        .stdin
        .take()
        .ok_or_else(|| "no input to the session".to_owned())?;
    let feed = async {
        let sent = match (source, local) {
            (UploadSource::Content(bytes), _) => input.write_all(bytes).await,
            (UploadSource::Path(file), Found::File { .. }) => {
                match tokio::fs::File::open(file).await {
                    Ok(mut f) => tokio::io::copy(&mut f, &mut input).await.map(drop),
                    Err(e) => Err(e),
                }
            }
            (UploadSource::Path(folder), _) => {
                tar_out(folder, connection.withheld(), &mut input).await
            }
        };
        let _ = input.shutdown().await;
        drop(input);
        sent
    };
    let (sent, out) = tokio::join!(feed, child.wait_with_output());
    let out = out.map_err(|e| format!("failed to wait for `ssh`: {e}"))?;
    if out.status.success() {
        return sent.map_err(|e| format!("failed to send: {e}"));
    }
    Err(session_error(connection, &out))
}

/// Receives `src` (as `found` describes it) into `path` here.
async fn receive(
    connection: &Connection,
    src: &str,
    found: &Found,
    path: &Path,
) -> Result<(), String> {
    let _permit = connection.permit().await;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(
        || "download".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let prefix = format!(".{name}.runbook-");
    let (script, is_folder) = match found {
        Found::Folder { .. } => (r#"cd -- "$1" && exec tar -c -f - ."#, true),
        _ => (r#"exec cat -- "$1""#, false),
    };
    let mut child = script_session(connection, script, &[src])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to start `ssh`: {e}"))?;
    let mut output = child
        .stdout
        .take()
        .ok_or_else(|| "no output from the session".to_owned())?;
    let shown = path.display();
    if is_folder {
        let staging = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(folder)
            .map_err(|e| format!("failed to create a folder beside {shown}: {e}"))?;
        let (unpacked, out) = tokio::join!(
            tar_in(&mut output, staging.path(), connection.withheld()),
            child.wait_with_output()
        );
        check_session(connection, out)?;
        unpacked.map_err(|e| format!("failed to unpack: {e}"))?;
        let staged = staging.path().to_path_buf();
        let got = tokio::task::spawn_blocking(move || digest::tree_sha256(&staged))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("failed to read what arrived: {e}"))?;
        verify(found, &got)?;
        replace_folder(staging, path).map_err(|e| format!("failed to put {shown} in place: {e}"))
    } else {
        let staging = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(folder)
            .map_err(|e| format!("failed to create a file beside {shown}: {e}"))?;
        let mut file = tokio::fs::File::from_std(
            staging
                .reopen()
                .map_err(|e| format!("failed to open a file beside {shown}: {e}"))?,
        );
        let (written, out) = tokio::join!(
            copy_hashing(&mut output, &mut file),
            child.wait_with_output()
        );
        check_session(connection, out)?;
        let got = written.map_err(|e| format!("failed to write beside {shown}: {e}"))?;
        file.sync_all()
            .await
            .map_err(|e| format!("failed to write beside {shown}: {e}"))?;
        verify(found, &got)?;
        if let Found::File { mode, .. } = found
            && let Ok(mode) = u32::from_str_radix(mode, 8)
        {
            std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("failed to set the mode of {shown}: {e}"))?;
        }
        staging
            .persist(path)
            .map(drop)
            .map_err(|e| format!("failed to put {shown} in place: {}", e.error))
    }
}

fn verify(found: &Found, got: &str) -> Result<(), String> {
    let want = sha_of(found);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "what arrived has sha256 {got}, not {want} (it changed during the transfer?)"
        ))
    }
}

/// A staged folder in place of `path`: the old one aside, the new one in, the old one removed.
fn replace_folder(staging: tempfile::TempDir, path: &Path) -> std::io::Result<()> {
    let staged = staging.keep();
    let aside = staged.with_extension("old");
    let had = path.is_dir();
    if had {
        std::fs::rename(path, &aside)?;
    }
    if let Err(e) = std::fs::rename(&staged, path) {
        if had {
            let _ = std::fs::rename(&aside, path);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e);
    }
    if had {
        std::fs::remove_dir_all(&aside)?;
    }
    Ok(())
}

fn check_session(
    connection: &Connection,
    out: std::io::Result<std::process::Output>,
) -> Result<(), String> {
    let out = out.map_err(|e| format!("failed to wait for `ssh`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(session_error(connection, &out))
    }
}

/// Why a session failed: the host's words, or the lost connection's.
fn session_error(connection: &Connection, out: &std::process::Output) -> String {
    if !connection.alive() {
        return format!("unreachable: {}", connection.lost());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.trim();
    match out.status.code() {
        _ if !said.is_empty() => said.lines().collect::<Vec<_>>().join("; "),
        Some(code) => format!("the host's shell exited with code {code}"),
        None => "the session was killed".to_owned(),
    }
}

/// Copies a stream into a file; returns the sha256 of what was copied.
async fn copy_hashing(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).await?;
    }
    to.flush().await?;
    Ok(hex(&hasher.finalize()))
}

/// A local folder as a tar stream into `to` (`tar` without the variables `withheld`).
async fn tar_out(
    folder: &Path,
    withheld: &[String],
    to: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let mut tar = tokio::process::Command::new("tar");
    withhold(tar.as_std_mut(), withheld);
    let mut tar = tar
        .arg("-C")
        .arg(folder)
        .args(["-c", "-f", "-", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut out = tar
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no output from tar"))?;
    tokio::io::copy(&mut out, to).await?;
    let done = tar.wait_with_output().await?;
    if done.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "tar: {}",
            String::from_utf8_lossy(&done.stderr).trim()
        )))
    }
}

/// A tar stream from `from` unpacked into a local folder (`tar` without the variables
/// `withheld`).
async fn tar_in(
    from: &mut (impl AsyncRead + Unpin),
    folder: &Path,
    withheld: &[String],
) -> std::io::Result<()> {
    let mut tar = tokio::process::Command::new("tar");
    withhold(tar.as_std_mut(), withheld);
    let mut tar = tar
        .arg("-C")
        .arg(folder)
        .args(["-x", "-o", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut input = tar
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no input to tar"))?;
    let copied = tokio::io::copy(from, &mut input).await;
    drop(input);
    let done = tar.wait_with_output().await?;
    copied?;
    if done.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "tar: {}",
            String::from_utf8_lossy(&done.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_of_a_remote_path() {
        assert_eq!(parent_of("/etc/app.conf"), "/etc");
        assert_eq!(parent_of("/app.conf"), "/");
        assert_eq!(parent_of("app.conf"), ".");
        assert_eq!(parent_of("/opt/app/"), "/opt");
    }

    #[test]
    fn a_folder_replaced_in_place_keeps_nothing_of_the_old_one() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let dest = root.path().join("conf");
        std::fs::create_dir(&dest).expect("a folder");
        std::fs::write(dest.join("old"), "x").expect("a file");
        let staging = tempfile::Builder::new()
            .prefix(".conf.runbook-")
            .tempdir_in(root.path())
            .expect("a staging folder");
        std::fs::write(staging.path().join("new"), "y").expect("a file");
        replace_folder(staging, &dest).expect("replaced");
        assert!(dest.join("new").exists());
        assert!(!dest.join("old").exists());
        assert_eq!(std::fs::read_dir(root.path()).expect("listable").count(), 1);
    }
}
