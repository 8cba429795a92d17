//! What survives a restart: app status changes and the audit log, in the data folder.
//!
//! One task owns the files, so writes never interleave and no lock is held across the disk
//! I/O. The state file is replaced atomically (write a temporary file, fsync it, rename it
//! over the old one, fsync the folder); the audit log is appended to and fsynced. Both happen
//! before an admin command's result is sent, so a server killed with SIGKILL right after an
//! acknowledged action restarts with that action in effect.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::protocol::admin::AppStatus;

const STATE_FILE: &str = "state.json";
const AUDIT_FILE: &str = "audit.jsonl";

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    app_status: BTreeMap<String, AppStatus>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    pub who: String,
    pub action: String,
    pub target: String,
    pub result: String,
}

enum Job {
    SaveStatuses(
        BTreeMap<String, AppStatus>,
        oneshot::Sender<std::io::Result<()>>,
    ),
    Audit(AuditRecord, oneshot::Sender<std::io::Result<()>>),
}

#[derive(Clone)]
pub struct Persist {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Read the persisted app statuses; a missing file means none were changed yet.
pub fn load_statuses(dir: &Path) -> Result<BTreeMap<String, AppStatus>, String> {
    let path = dir.join(STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<StateFile>(&text)
            .map(|s| s.app_status)
            .map_err(|e| {
                format!(
                    "{}: {e}; move the file away to start from the config's statuses",
                    path.display()
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl Persist {
    /// Start the writer task for the data folder `dir` (created if missing).
    pub fn start(dir: PathBuf) -> std::io::Result<Persist> {
        std::fs::create_dir_all(&dir)?;
        let (jobs, mut receiver) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(job) = receiver.recv().await {
                let dir = dir.clone();
                // The blocking pool keeps fsync off the async workers; jobs stay in order
                // because the next one starts only after this one finished.
                let _ = tokio::task::spawn_blocking(move || match job {
                    Job::SaveStatuses(statuses, done) => {
                        let _ = done.send(save_statuses(&dir, &statuses));
                    }
                    Job::Audit(record, done) => {
                        let _ = done.send(append_audit(&dir, &record));
                    }
                })
                .await;
            }
        });
        Ok(Persist { jobs })
    }

    pub async fn save_statuses(
        &self,
        statuses: BTreeMap<String, AppStatus>,
    ) -> std::io::Result<()> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::SaveStatuses(statuses, done))
            .map_err(|_| std::io::Error::other("the persistence task has stopped"))?;
        wait.await
            .map_err(|_| std::io::Error::other("the persistence task has stopped"))?
    }

    pub async fn audit(
        &self,
        who: &str,
        action: &str,
        target: &str,
        result: &str,
    ) -> std::io::Result<()> {
        let record = AuditRecord {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            who: who.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            result: result.to_owned(),
        };
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::Audit(record, done))
            .map_err(|_| std::io::Error::other("the persistence task has stopped"))?;
        wait.await
            .map_err(|_| std::io::Error::other("the persistence task has stopped"))?
    }
}

fn save_statuses(dir: &Path, statuses: &BTreeMap<String, AppStatus>) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&StateFile {
        app_status: statuses.clone(),
    })
    .map_err(std::io::Error::other)?;
    let temporary = dir.join(format!("{STATE_FILE}.tmp"));
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, dir.join(STATE_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

fn append_audit(dir: &Path, record: &AuditRecord) -> std::io::Result<()> {
    let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(AUDIT_FILE))?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// Every record of the audit log, for tests and tools.
pub fn read_audit(dir: &Path) -> std::io::Result<Vec<AuditRecord>> {
    let text = match std::fs::read_to_string(dir.join(AUDIT_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// The admin token: the one given, or the one stored in the data folder, or a new one (256
/// random bits) stored there with mode 0600. Returns the token and, when stored, its path.
pub fn admin_token(
    dir: &Path,
    given: Option<String>,
) -> std::io::Result<(String, Option<PathBuf>)> {
    if let Some(token) = given.filter(|t| !t.trim().is_empty()) {
        return Ok((token, None));
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if !existing.is_empty() {
            return Ok((existing, Some(path)));
        }
    }
    let token: String = {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        (0..32)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    Ok((token, Some(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn statuses_and_audit_survive_and_the_token_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let persist = Persist::start(dir.path().to_path_buf()).unwrap();
        let statuses = BTreeMap::from([("demo".to_owned(), AppStatus::Suspended)]);
        persist.save_statuses(statuses.clone()).await.unwrap();
        persist
            .audit("admin@test", "set_app_status", "demo", "suspended")
            .await
            .unwrap();
        assert_eq!(load_statuses(dir.path()).unwrap(), statuses);
        let audit = read_audit(dir.path()).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "set_app_status");

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

    #[test]
    fn a_corrupt_state_file_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        let error = load_statuses(dir.path()).unwrap_err();
        assert!(error.contains("state.json"), "{error}");
    }
}
