//! What survives a restart: app status changes, bans and the audit log, in the data folder.
//!
//! One task owns the files, so writes never interleave and no lock is held across the disk
//! I/O. The state file is replaced atomically (write a temporary file, fsync it, rename it
//! over the old one, fsync the folder); the audit log is appended to and fsynced. An admin
//! action is audited twice: its intent before it takes effect (an action whose intent cannot
//! be written is refused, so nothing happens unaudited) and its outcome after. Both happen
//! before the command's result is sent, so a server killed with SIGKILL right after an
//! acknowledged action restarts with that action in effect and on record.
//!
//! The folder is created 0700 and every file in it 0600; no file is opened through a symbolic
//! link, so someone who can write to the folder's parent cannot redirect the token or the log.
//! A write that fails half-way (a full disk) is cut back to the last complete line, and a
//! torn last line left by a crash is cut off at start, so the log is always whole lines.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::protocol::admin::{AppStatus, BanInfo};

const STATE_FILE: &str = "state.json";
const AUDIT_FILE: &str = "audit.jsonl";
const TOKEN_FILE: &str = "admin-token";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StateFile {
    app_status: BTreeMap<String, AppStatus>,
    /// Bans in force when the file was written (expired ones are dropped at load).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bans: Vec<BanInfo>,
    /// The last ban id given out: ids are never reused, so an audit line names one ban.
    #[serde(default)]
    last_ban_id: u64,
}

/// Whether a record announces an action or reports how it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditPhase {
    /// Written before the action takes effect.
    Intent,
    /// Written after. Logs written before intents existed hold only these.
    #[default]
    Outcome,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    /// Numbers the action: its intent and outcome records carry the same one.
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub phase: AuditPhase,
    pub who: String,
    pub action: String,
    pub target: String,
    /// `requested` on an intent; what happened (or `refused: …`) on an outcome.
    pub result: String,
}

/// An action whose intent is on record; [`Persist::audit_outcome`] closes it.
#[derive(Debug, Clone)]
pub struct AuditTicket {
    id: u64,
    who: String,
    action: String,
    target: String,
}

enum Job {
    SaveStatuses(
        BTreeMap<String, AppStatus>,
        oneshot::Sender<std::io::Result<()>>,
    ),
    SaveBans(Vec<BanInfo>, u64, oneshot::Sender<std::io::Result<()>>),
    Audit(AuditRecord, oneshot::Sender<std::io::Result<()>>),
}

#[derive(Clone)]
pub struct Persist {
    jobs: mpsc::UnboundedSender<Job>,
    next_id: Arc<AtomicU64>,
    /// Held from reading the statuses to applying the change, so that two consoles changing
    /// app statuses at once cannot persist each other's stale view.
    status_changes: Arc<tokio::sync::Mutex<()>>,
}

/// Read the persisted app statuses; a missing file means none were changed yet.
pub fn load_statuses(dir: &Path) -> Result<BTreeMap<String, AppStatus>, String> {
    load_state(dir).map(|s| s.app_status)
}

/// Read the persisted bans and the last ban id given out.
pub fn load_bans(dir: &Path) -> Result<(Vec<BanInfo>, u64), String> {
    load_state(dir).map(|s| (s.bans, s.last_ban_id))
}

fn load_state(dir: &Path) -> Result<StateFile, String> {
    let path = dir.join(STATE_FILE);
    match read_private(&path) {
        Ok(text) => serde_json::from_str::<StateFile>(&text).map_err(|e| {
            format!(
                "{}: {e}; move the file away to start from the config's statuses",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateFile::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl Persist {
    /// Start the writer task for the data folder `dir` (created 0700 if missing).
    pub fn start(dir: PathBuf) -> std::io::Result<Persist> {
        create_private_dir(&dir)?;
        let last_id = repair_audit(&dir.join(AUDIT_FILE))?;
        // Ids are never reused, so a log that already holds the largest one cannot go on: the
        // next action would wrap to an id on record (or overflow).
        let Some(next_id) = last_id.checked_add(1) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{AUDIT_FILE} holds action id {last_id}, the largest there is; move the log \
                     away to number actions afresh"
                ),
            ));
        };
        // The writer keeps the whole state file in memory: statuses and bans are saved by
        // different commands, and each save writes both.
        let mut state = load_state(&dir).unwrap_or_default();
        let (jobs, mut receiver) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(job) = receiver.recv().await {
                let dir = dir.clone();
                let (next, written) = match job {
                    Job::SaveStatuses(statuses, done) => {
                        let mut next = state.clone();
                        next.app_status = statuses;
                        (next, Some(done))
                    }
                    Job::SaveBans(bans, last_ban_id, done) => {
                        let mut next = state.clone();
                        next.bans = bans;
                        next.last_ban_id = last_ban_id;
                        (next, Some(done))
                    }
                    Job::Audit(record, done) => {
                        // The blocking pool keeps fsync off the async workers; jobs stay in
                        // order because the next one starts only after this one finished.
                        let _ = tokio::task::spawn_blocking(move || {
                            let _ = done.send(append_audit(&dir, &record));
                        })
                        .await;
                        continue;
                    }
                };
                let snapshot = next.clone();
                let saved = tokio::task::spawn_blocking(move || save_state(&dir, &snapshot))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
                if saved.is_ok() {
                    state = next;
                }
                if let Some(done) = written {
                    let _ = done.send(saved);
                }
            }
        });
        Ok(Persist {
            jobs,
            next_id: Arc::new(AtomicU64::new(next_id)),
            status_changes: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Serialize app status changes: hold the guard from reading the current statuses until
    /// the change is applied.
    pub async fn status_change(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.status_changes.lock().await
    }

    pub async fn save_statuses(
        &self,
        statuses: BTreeMap<String, AppStatus>,
    ) -> std::io::Result<()> {
        self.submit(|done| Job::SaveStatuses(statuses, done)).await
    }

    /// Replace the persisted bans (the ones in force, and the last id given out).
    pub async fn save_bans(&self, bans: Vec<BanInfo>, last_ban_id: u64) -> std::io::Result<()> {
        self.submit(|done| Job::SaveBans(bans, last_ban_id, done))
            .await
    }

    async fn write_record(&self, record: AuditRecord) -> std::io::Result<()> {
        self.submit(|done| Job::Audit(record, done)).await
    }

    /// Hand a job to the writer task and wait until it is on disk.
    async fn submit(
        &self,
        job: impl FnOnce(oneshot::Sender<std::io::Result<()>>) -> Job,
    ) -> std::io::Result<()> {
        let stopped = || std::io::Error::other("the persistence task has stopped");
        let (done, wait) = oneshot::channel();
        self.jobs.send(job(done)).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Put an action on record before it takes effect. An error means it must not be done.
    pub async fn audit_intent(
        &self,
        who: &str,
        action: &str,
        target: &str,
    ) -> std::io::Result<AuditTicket> {
        let ticket = AuditTicket {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            who: who.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
        };
        self.write_record(record(&ticket, AuditPhase::Intent, "requested"))
            .await?;
        Ok(ticket)
    }

    /// Record how an action whose intent is on record ended.
    pub async fn audit_outcome(&self, ticket: &AuditTicket, result: &str) -> std::io::Result<()> {
        self.write_record(record(ticket, AuditPhase::Outcome, result))
            .await
    }
}

fn record(ticket: &AuditTicket, phase: AuditPhase, result: &str) -> AuditRecord {
    AuditRecord {
        time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        id: ticket.id,
        phase,
        who: ticket.who.clone(),
        action: ticket.action.clone(),
        target: ticket.target.clone(),
        result: result.to_owned(),
    }
}

/// Options for a file only the server's user may read, never opened through a symlink.
pub fn private_file() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

fn read_private(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    private_file()
        .read(true)
        .open(path)?
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Create `dir` (and its parents) readable by this user only; warn when an existing one is
/// open to others.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        // A folder that already existed keeps its owner and mode: one that another user owns
        // or may write to lets that user plant the token the server trusts, so it is refused.
        if let Some(problem) = not_private(dir, "data folder", "chmod 700")? {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                problem,
            ));
        }
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                folder = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data folder is open to other users; chmod 700 it"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Why `path` cannot be trusted, if it cannot: another user owns it, or others may write to
/// it. `fix` is the command that makes a file or folder of one's own private.
#[cfg(unix)]
fn not_private(path: &Path, what: &str, fix: &str) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::symlink_metadata(path)?;
    let me = rustix::process::getuid().as_raw();
    if metadata.uid() != me {
        return Ok(Some(format!(
            "the {what} {} belongs to user {}, not to you ({me}): another user could have put its files there. Use a folder of your own (--data-dir), or `chown -R {me} {}` if it is yours",
            path.display(),
            metadata.uid(),
            path.display()
        )));
    }
    if metadata.mode() & 0o022 != 0 {
        return Ok(Some(format!(
            "the {what} {} can be written by other users (mode {:o}); `{fix} {}`",
            path.display(),
            metadata.mode() & 0o777,
            path.display()
        )));
    }
    Ok(None)
}

/// Cut a torn last line (a crash or a full disk mid-write) off the audit log, and return
/// the highest action id on record.
fn repair_audit(path: &Path) -> std::io::Result<u64> {
    let mut file = match private_file().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    // An audit log made by an older version, or by hand, may be open to others: it names
    // every action and who took it, so it is made the user's alone, and the log says so.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            tracing::warn!(
                file = %path.display(),
                was = format!("{:o}", mode & 0o777),
                "the audit log was open to other users; it is 0600 now"
            );
        }
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let whole = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |last| last + 1);
    if whole < bytes.len() {
        tracing::warn!(
            file = %path.display(),
            bytes = bytes.len() - whole,
            "cutting an incomplete last line off the audit log"
        );
        file.set_len(whole as u64)?;
        file.sync_all()?;
    }
    Ok(bytes[..whole]
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<AuditRecord>(line).ok())
        .map(|r| r.id)
        .max()
        .unwrap_or(0))
}

fn save_state(dir: &Path, state: &StateFile) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    let temporary = dir.join(format!("{STATE_FILE}.tmp"));
    {
        let mut file = private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, dir.join(STATE_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

fn append_audit(dir: &Path, record: &AuditRecord) -> std::io::Result<()> {
    let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = private_file()
        .create(true)
        .append(true)
        .open(dir.join(AUDIT_FILE))?;
    let before = file.metadata()?.len();
    if let Err(error) = file
        .write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
    {
        // Leave whole lines only: a reader must never see half a record.
        let _ = file.set_len(before).and_then(|()| file.sync_all());
        return Err(error);
    }
    Ok(())
}

/// Every record of the audit log, for tests and tools. A line that is not a record is an
/// error: the log is whole lines or it is damaged.
pub fn read_audit(dir: &Path) -> std::io::Result<Vec<AuditRecord>> {
    let text = match read_private(&dir.join(AUDIT_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    text.lines()
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{AUDIT_FILE} line {}: {e}", index + 1),
                )
            })
        })
        .collect()
}

/// The admin token: the one given, or the one stored in the data folder, or a new one (256
/// random bits) stored there with mode 0600. Returns the token and, when stored, its path.
///
/// The file is created exclusively (a file that appears meanwhile is not overwritten) and
/// never followed through a symlink; a stored token that others can read is used, with a
/// warning.
pub fn admin_token(
    dir: &Path,
    given: Option<String>,
) -> std::io::Result<(String, Option<PathBuf>)> {
    if let Some(token) = given.filter(|t| !t.trim().is_empty()) {
        return Ok((token, None));
    }
    create_private_dir(dir)?;
    let path = dir.join(TOKEN_FILE);
    if let Some(existing) = stored_token(&path)? {
        return Ok((existing, Some(path)));
    }
    let token: String = {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        (0..32)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    let created = private_file().write(true).create_new(true).open(&path);
    let mut file = match created {
        Ok(file) => file,
        // Another process stored one first: use it rather than replace it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return match stored_token(&path)? {
                Some(existing) => Ok((existing, Some(path))),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists but holds no token; remove it", path.display()),
                )),
            };
        }
        Err(e) => return Err(e),
    };
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    Ok((token, Some(path)))
}

/// Why the stored token file at `path` needs attention, if it does: others can read it.
pub fn token_file_problem(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::symlink_metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "the admin token in {} can be read by other users (mode {:o}); chmod 600 it, or remove it and restart for a new one",
                path.display(),
                mode & 0o777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The token in `path`, if the file exists and is not empty.
/// Where a server keeping its data in `dir` stores a generated admin token.
pub fn admin_token_file(dir: &Path) -> PathBuf {
    dir.join(TOKEN_FILE)
}

/// The admin token stored at `path`, if one is there and readable.
pub fn read_admin_token(path: &Path) -> Option<String> {
    stored_token(path).ok().flatten()
}

fn stored_token(path: &Path) -> std::io::Result<Option<String>> {
    let text = match read_private(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!(
                    "{}: {e} (a symbolic link is refused; the token must be a regular file)",
                    path.display()
                ),
            ))
        }
    };
    #[cfg(unix)]
    if let Some(problem) = not_private(path, "admin token file", "chmod 600")? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            problem,
        ));
    }
    if let Some(problem) = token_file_problem(path) {
        tracing::warn!("{problem}");
    }
    let token = text.trim();
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_log_open_to_others_is_made_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(AUDIT_FILE);
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        repair_audit(&log).unwrap();
        let mode = std::fs::metadata(&log).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_folder_or_token_file_others_can_write_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().unwrap();
        let open = parent.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = create_private_dir(&open).unwrap_err().to_string();
        assert!(error.contains("chmod 700"), "{error}");
        let dir = parent.path().join("data");
        create_private_dir(&dir).unwrap();
        let token = admin_token_file(&dir);
        std::fs::write(&token, "planted-token").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o666)).unwrap();
        let error = admin_token(&dir, None).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }

    #[tokio::test]
    async fn statuses_and_audit_survive_and_the_token_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let persist = Persist::start(dir.path().to_path_buf()).unwrap();
        let statuses = BTreeMap::from([("demo".to_owned(), AppStatus::Suspended)]);
        persist.save_statuses(statuses.clone()).await.unwrap();
        let ticket = persist
            .audit_intent("admin@test", "set_app_status", "demo")
            .await
            .unwrap();
        persist.audit_outcome(&ticket, "suspended").await.unwrap();
        assert_eq!(load_statuses(dir.path()).unwrap(), statuses);
        let audit = read_audit(dir.path()).unwrap();
        assert_eq!(audit.len(), 2);
        assert_eq!(audit[1].action, "set_app_status");
        assert_eq!(audit[1].result, "suspended");

        let (token, path) = admin_token(dir.path(), None).unwrap();
        assert_eq!(token.len(), 64);
        let path = path.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            admin_token(dir.path(), None).unwrap().0,
            token,
            "the stored token is reused"
        );
        assert_eq!(
            admin_token(dir.path(), Some("given".into())).unwrap().0,
            "given"
        );
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_folder_is_0700_and_every_file_0600() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let persist = Persist::start(dir.clone()).unwrap();
        persist
            .save_statuses(BTreeMap::from([("demo".to_owned(), AppStatus::Revoked)]))
            .await
            .unwrap();
        persist.audit_intent("t", "kick", "p1").await.unwrap();
        admin_token(&dir, None).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for file in [STATE_FILE, AUDIT_FILE, TOKEN_FILE] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn no_file_is_followed_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "precious").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join(TOKEN_FILE)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join(AUDIT_FILE)).unwrap();

        let error = admin_token(&data, None).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        // The log is opened at start to cut a torn tail: refused there already.
        assert!(Persist::start(data.clone()).is_err());
        std::fs::remove_file(data.join(AUDIT_FILE)).unwrap();
        let persist = Persist::start(data.clone()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join(AUDIT_FILE)).unwrap();
        assert!(persist.audit_intent("t", "kick", "p1").await.is_err());
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "precious");
    }

    #[cfg(unix)]
    #[test]
    fn a_token_others_can_read_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (token, path) = admin_token(dir.path(), None).unwrap();
        let path = path.unwrap();
        assert_eq!(token_file_problem(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let problem = token_file_problem(&path).unwrap();
        assert!(
            problem.contains("mode 644") && problem.contains("chmod 600"),
            "{problem}"
        );
        // Still usable: the warning is for the operator, the server keeps its token.
        assert_eq!(admin_token(dir.path(), None).unwrap().0, token);
    }

    #[test]
    fn an_existing_token_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_FILE), "  \n").unwrap();
        let error = admin_token(dir.path(), None).unwrap_err().to_string();
        assert!(error.contains("holds no token"), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap(),
            "  \n"
        );
    }

    #[tokio::test]
    async fn intent_then_outcome_share_an_id_that_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let persist = Persist::start(dir.path().to_path_buf()).unwrap();
        let first = persist.audit_intent("a", "kick", "p1").await.unwrap();
        persist.audit_outcome(&first, "closing p1").await.unwrap();
        drop(persist);
        let persist = Persist::start(dir.path().to_path_buf()).unwrap();
        let second = persist.audit_intent("a", "close_room", "R").await.unwrap();
        persist
            .audit_outcome(&second, "refused: no room")
            .await
            .unwrap();
        let records = read_audit(dir.path()).unwrap();
        let phases: Vec<(u64, AuditPhase, &str)> = records
            .iter()
            .map(|r| (r.id, r.phase, r.result.as_str()))
            .collect();
        assert_eq!(
            phases,
            [
                (1, AuditPhase::Intent, "requested"),
                (1, AuditPhase::Outcome, "closing p1"),
                (2, AuditPhase::Intent, "requested"),
                (2, AuditPhase::Outcome, "refused: no room"),
            ]
        );
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let persist = Persist::start(dir.path().to_path_buf()).unwrap();
        persist.audit_intent("a", "kick", "p1").await.unwrap();
        drop(persist);
        let path = dir.path().join(AUDIT_FILE);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(br#"{"time":"2026-12-01T00:00:00Z","id":2,"pha"#)
            .unwrap();
        drop(file);
        assert!(read_audit(dir.path()).is_err(), "a torn line is damage");
        let persist = Persist::start(dir.path().to_path_buf()).unwrap();
        persist.audit_intent("a", "kick", "p2").await.unwrap();
        let records = read_audit(dir.path()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].id, 2);
    }

    #[test]
    fn a_corrupt_state_file_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        let error = load_statuses(dir.path()).unwrap_err();
        assert!(error.contains("state.json"), "{error}");
    }
}
