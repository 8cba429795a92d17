//! Where a command's admin token comes from: `--admin-token-file`, `RELAYDECK_ADMIN_TOKEN`, or
//! `--admin-token`.
//!
//! A token on the command line is in `/proc/PID/cmdline`, readable by every local user for
//! as long as the process runs, so it is accepted with a warning; a file is read once, and
//! only when it is this user's and nobody else can write it (someone who can write it chooses
//! the token the server trusts, or the one a client sends).

use std::io::Read as _;
use std::path::Path;

/// The environment variable every command reads the token from.
pub const ENV: &str = "RELAYDECK_ADMIN_TOKEN";

/// The shortest token `serve` accepts: 32 characters leave guessing hopeless even at the
/// rate a loopback server answers.
pub const MIN_SERVER_TOKEN_CHARS: usize = 32;

/// Largest token file read.
const MAX_FILE_BYTES: u64 = 4096;

/// The token given to a command, from `--admin-token` (or the environment, through clap)
/// or `--admin-token-file`; warns when it was on the command line.
pub fn resolve(given: Option<String>, file: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(path) = file {
        return read_file(path).map(Some);
    }
    if let Some(token) = &given {
        let from_env = std::env::var(ENV).is_ok_and(|v| &v == token);
        if !from_env {
            let _ = writeln_stderr(
                "relaydeck: warning: --admin-token is visible to every local user in the process list; prefer --admin-token-file PATH or RELAYDECK_ADMIN_TOKEN",
            );
        }
    }
    Ok(given)
}

/// `serve`'s token: as [`resolve`], at least [`MIN_SERVER_TOKEN_CHARS`] long.
pub fn resolve_for_server(
    given: Option<String>,
    file: Option<&Path>,
) -> Result<Option<String>, String> {
    let token = resolve(given, file)?;
    if let Some(token) = &token {
        let chars = token.chars().count();
        if chars < MIN_SERVER_TOKEN_CHARS {
            return Err(format!(
                "the admin token has {chars} characters; at least {MIN_SERVER_TOKEN_CHARS} are required (for one: `openssl rand -hex 32`), or give none and one is generated"
            ));
        }
    }
    Ok(token)
}

fn writeln_stderr(line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stderr(), "{line}")
}

/// The token in `path`: a regular file (not a link), this user's, writable by nobody else.
pub fn read_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let metadata =
        std::fs::symlink_metadata(path).map_err(|e| format!("--admin-token-file {shown}: {e}"))?;
    if !metadata.file_type().is_file() {
        return Err(format!(
            "--admin-token-file {shown}: not a regular file (a symbolic link is refused)"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::getuid().as_raw();
        if metadata.uid() != me {
            return Err(format!(
                "--admin-token-file {shown}: owned by user {} and not by you ({me}), so someone else chose this token; `chown {me} {shown}` if it is yours",
                metadata.uid()
            ));
        }
        if metadata.mode() & 0o022 != 0 {
            return Err(format!(
                "--admin-token-file {shown}: others can write it (mode {:o}); `chmod 600 {shown}`",
                metadata.mode() & 0o777
            ));
        }
        if metadata.mode() & 0o044 != 0 {
            let _ = writeln_stderr(&format!(
                "relaydeck: warning: --admin-token-file {shown} can be read by other users (mode {:o}); chmod 600 it",
                metadata.mode() & 0o777
            ));
        }
    }
    let mut text = String::new();
    let file = {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        options
            .open(path)
            .map_err(|e| format!("--admin-token-file {shown}: {e}"))?
    };
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("--admin-token-file {shown}: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "--admin-token-file {shown}: over {MAX_FILE_BYTES} bytes; it should hold the token alone"
        ));
    }
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("--admin-token-file {shown}: empty"));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_file_others_can_write_or_a_link_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "t".repeat(40) + "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_file(&path).unwrap(), "t".repeat(40));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).unwrap();
        assert!(read_file(&path).unwrap_err().contains("chmod 600"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_file(&link).unwrap_err().contains("symbolic link"));
    }

    #[test]
    fn a_short_server_token_is_refused() {
        let error = resolve_for_server(Some("short".to_owned()), None).unwrap_err();
        assert!(error.contains("at least 32"), "{error}");
        assert!(resolve_for_server(Some("x".repeat(32)), None).is_ok());
        assert!(resolve_for_server(None, None).unwrap().is_none());
    }
}
