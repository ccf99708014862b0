//! The checkpoint store: [`Checkpointer`] owns (and flocks) `--data-dir`,
//! loads the saved state by [`CheckpointKey`] at start, and writes every
//! file input's [`InputState`] with its watermarks atomically.

use super::{FINGERPRINT_BYTES, Fingerprint, InputState, OFFSET_MASK, SavedFile};
use super::{LOCK_FILE, PREVIOUS_FILE, STATE_FILE, TEMP_FILE};
use super::{SPEC_KEYED_VERSION, STATE_VERSION};
use nix::fcntl::{Flock, FlockArg};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Saved offsets by checkpoint key, then by (device, inode).
pub(crate) type Loaded = HashMap<String, HashMap<(u64, u64), SavedFile>>;

/// Under what a file input's checkpoints are saved: its path pattern made
/// absolute, so that keys other than the path (`format`, `from`) can change
/// without losing any file's place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckpointKey {
    /// The key in the state file: `pattern`, with ` #N` for the N-th
    /// (N > 1) input of this run with the same pattern.
    pub key: String,
    /// The absolute path pattern (a path or a glob).
    pub pattern: String,
    /// The input's SPEC, for messages.
    pub input: String,
}

/// The checkpoint key of each input (`None` for inputs other than files).
pub(crate) fn input_keys(inputs: &[crate::config::InputSpec]) -> Vec<Option<CheckpointKey>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    inputs
        .iter()
        .map(|input| {
            let pattern = absolute_pattern(input.file_pattern()?);
            let count = seen.entry(pattern.clone()).or_default();
            *count += 1;
            let key = match *count {
                1 => pattern.clone(),
                n => format!("{pattern} #{n}"),
            };
            Some(CheckpointKey {
                key,
                pattern,
                input: input.name.clone(),
            })
        })
        .collect()
}

fn absolute_pattern(pattern: &str) -> String {
    std::path::absolute(pattern)
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_else(|_| pattern.to_string())
}

/// The key a version 1 state file's input SPEC (`file:PATTERN[,k=v]...`)
/// has now: its pattern, made absolute.
fn key_of_spec(spec: &str) -> String {
    let target = spec.strip_prefix("file:").unwrap_or(spec);
    let pattern = target.split(',').next().unwrap_or(target);
    absolute_pattern(pattern)
}

/// Whether a file input with this (absolute) pattern reads `path`.
fn pattern_reads(pattern: &str, path: &Path) -> bool {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if !crate::pattern::is_glob(pattern) {
        return Path::new(pattern) == path;
    }
    // As the file input expands a glob: `*` stops at `/`.
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    glob::Pattern::new(pattern).is_ok_and(|glob| glob.matches_path_with(&path, options))
}

/// Writes the state of every file input to `--data-dir`.
pub(crate) struct Checkpointer {
    dir: PathBuf,
    dir_handle: File,
    inputs: Vec<Arc<InputState>>,
    /// Files saved under keys no input of this run has (and no input took
    /// over): kept as they were, so removing an input for one run does not
    /// lose its place.
    carried: BTreeMap<String, Vec<SavedFile>>,
    /// The loaded state of this run's inputs, written for an input until
    /// its reader has published its own list.
    loaded: HashMap<String, Vec<SavedFile>>,
    last_written: Option<Vec<u8>>,
    /// Held (flock) for the life of the process: one ringway per data dir.
    _lock: Flock<File>,
}

impl Checkpointer {
    /// Opens (creating it if needed) and locks the data directory, and loads
    /// the saved state for the inputs of `keys`. Errors are one line for
    /// the operator; checkpoints that no input matches are warned about.
    pub fn open(dir: &Path, keys: &[CheckpointKey]) -> Result<(Self, Loaded), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create --data-dir {}: {e}", dir.display()))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| format!("cannot write in --data-dir {}: {e}", dir.display()))?;
        let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock).map_err(|_| {
            format!(
                "--data-dir {} is in use by another ringway (its lock file is held)",
                dir.display()
            )
        })?;
        let dir_handle = File::open(dir)
            .map_err(|e| format!("cannot open --data-dir {}: {e}", dir.display()))?;
        let saved = load_document(dir).map(saved_by_key).unwrap_or_default();
        let (loaded, carried) = match_saved(saved, keys);
        let loaded_map = loaded
            .iter()
            .map(|(key, files)| {
                let files = files
                    .iter()
                    .map(|file| (file.identity, file.clone()))
                    .collect();
                (key.clone(), files)
            })
            .collect();
        Ok((
            Self {
                dir: dir.to_path_buf(),
                dir_handle,
                inputs: Vec::new(),
                carried,
                loaded,
                last_written: None,
                _lock: lock,
            },
            loaded_map,
        ))
    }

    pub fn add_input(&mut self, input: Arc<InputState>) {
        self.inputs.push(input);
    }

    /// Bytes delivered (watermarks moved forward) since start, over every
    /// file input.
    pub fn delivered_total(&self) -> u64 {
        self.inputs
            .iter()
            .map(|input| input.offsets.delivered_total())
            .sum()
    }

    /// Writes the state if it changed since the last write: temp file,
    /// fsync, keep the current file as the previous copy, rename, fsync
    /// the directory.
    pub fn write(&mut self) -> std::io::Result<()> {
        let files_json = |files: &[SavedFile]| -> serde_json::Value {
            files.iter().map(file_json).collect::<Vec<_>>().into()
        };
        let mut inputs: serde_json::Map<String, serde_json::Value> = self
            .carried
            .iter()
            .map(|(key, files)| (key.clone(), files_json(files)))
            .collect();
        for input in &self.inputs {
            let Some(current) = input.current() else {
                if let Some(files) = self.loaded.get(&input.name) {
                    inputs.insert(input.name.clone(), files_json(files));
                }
                continue;
            };
            inputs.insert(input.name.clone(), files_json(&current));
        }
        let document = serde_json::json!({ "version": STATE_VERSION, "inputs": inputs });
        let mut text = serde_json::to_vec_pretty(&document).map_err(std::io::Error::other)?;
        text.push(b'\n');
        if self.last_written.as_ref() == Some(&text) {
            return Ok(());
        }
        let temp = self.dir.join(TEMP_FILE);
        let mut file = File::create(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        let current = self.dir.join(STATE_FILE);
        if current.exists() {
            let previous_temp = self.dir.join("checkpoints.json.prev.tmp");
            let _ = std::fs::remove_file(&previous_temp);
            // A hard link keeps the previous copy without copying it; a
            // file system without links gets a copy.
            if std::fs::hard_link(&current, &previous_temp).is_err() {
                std::fs::copy(&current, &previous_temp)?;
            }
            std::fs::rename(&previous_temp, self.dir.join(PREVIOUS_FILE))?;
        }
        std::fs::rename(&temp, &current)?;
        self.dir_handle.sync_all()?;
        self.last_written = Some(text);
        Ok(())
    }
}

/// Reads the state file, falling back to the previous copy with a warning
/// when it is missing, empty, truncated or corrupt; `None` (start per
/// `--from`) when neither is good.
fn load_document(dir: &Path) -> Option<serde_json::Value> {
    let current = dir.join(STATE_FILE);
    let previous = dir.join(PREVIOUS_FILE);
    match read_document(&current) {
        Ok(document) => return Some(document),
        Err(None) if !previous.exists() => return None, // a first run
        Err(why) => eprintln!(
            "ringway: warning: checkpoint file {} is unusable ({}); trying the previous copy",
            current.display(),
            why.unwrap_or_else(|| "missing".into())
        ),
    }
    match read_document(&previous) {
        Ok(document) => {
            eprintln!(
                "ringway: warning: resuming from the previous checkpoint copy {} (files may repeat up to one checkpoint interval)",
                previous.display()
            );
            Some(document)
        }
        Err(why) => {
            eprintln!(
                "ringway: warning: previous checkpoint copy {} is unusable too ({}); every file starts per --from",
                previous.display(),
                why.unwrap_or_else(|| "missing".into())
            );
            None
        }
    }
}

/// `Err(None)` when the file does not exist; `Err(Some(why))` when it is
/// not a state file.
fn read_document(path: &Path) -> Result<serde_json::Value, Option<String>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(error) => return Err(Some(error.to_string())),
    };
    if text.is_empty() {
        return Err(Some("it is empty".into()));
    }
    let document: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| Some(format!("not valid JSON: {e}")))?;
    if !matches!(
        document["version"].as_u64(),
        Some(STATE_VERSION | SPEC_KEYED_VERSION)
    ) {
        return Err(Some(format!("unknown version {}", document["version"])));
    }
    let Some(inputs) = document["inputs"].as_object() else {
        return Err(Some("no \"inputs\" object".into()));
    };
    for files in inputs.values() {
        let Some(files) = files.as_array() else {
            return Err(Some("an input's files are not a list".into()));
        };
        if files.iter().any(|file| parse_file(file).is_none()) {
            return Err(Some("a file entry is malformed".into()));
        }
    }
    Ok(document)
}

fn parse_file(value: &serde_json::Value) -> Option<SavedFile> {
    Some(SavedFile {
        path: PathBuf::from(value["path"].as_str()?),
        identity: (value["dev"].as_u64()?, value["ino"].as_u64()?),
        fingerprint: Fingerprint {
            len: u32::try_from(value["fingerprint_len"].as_u64()?)
                .ok()
                .filter(|&len| len as usize <= FINGERPRINT_BYTES)?,
            hash: value["fingerprint"].as_u64()?,
        },
        offset: value["offset"].as_u64().filter(|&o| o <= OFFSET_MASK)?,
        modified: None,
    })
}

fn file_json(file: &SavedFile) -> serde_json::Value {
    serde_json::json!({
        "path": file.path.to_string_lossy(),
        "dev": file.identity.0,
        "ino": file.identity.1,
        "fingerprint_len": file.fingerprint.len,
        "fingerprint": file.fingerprint.hash,
        "offset": file.offset,
    })
}

/// The saved files of a state document by key; a version 1 document's
/// SPEC keys become path patterns, and SPECs with the same pattern are
/// merged (per file, the furthest offset: the newest run's).
fn saved_by_key(document: serde_json::Value) -> BTreeMap<String, Vec<SavedFile>> {
    let spec_keyed = document["version"].as_u64() == Some(SPEC_KEYED_VERSION);
    let mut saved: BTreeMap<String, Vec<SavedFile>> = BTreeMap::new();
    let Some(inputs) = document["inputs"].as_object() else {
        return saved;
    };
    for (key, files) in inputs {
        let key = if spec_keyed {
            key_of_spec(key)
        } else {
            key.clone()
        };
        let entry = saved.entry(key).or_default();
        for file in files
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(parse_file)
        {
            merge_file(entry, file);
        }
    }
    saved
}

/// Adds `file` to `files`, or keeps the furthest offset of the two when
/// the same file (identity and fingerprint) is there already.
fn merge_file(files: &mut Vec<SavedFile>, file: SavedFile) {
    match files
        .iter_mut()
        .find(|known| known.identity == file.identity)
    {
        Some(known) if known.fingerprint == file.fingerprint => {
            known.offset = known.offset.max(file.offset);
        }
        Some(_) => {} // another file under that inode: keep the first
        None => files.push(file),
    }
}

/// Splits the saved files into this run's inputs' (by key) and those kept
/// aside. A file saved under a key no input has is taken over by the first
/// input whose pattern reads its path (the pattern was edited, say from
/// `/var/log/*.log` to `/var/log/app*.log`); what no input takes is kept,
/// and said in a warning.
fn match_saved(
    mut saved: BTreeMap<String, Vec<SavedFile>>,
    keys: &[CheckpointKey],
) -> (
    HashMap<String, Vec<SavedFile>>,
    BTreeMap<String, Vec<SavedFile>>,
) {
    let mut loaded: HashMap<String, Vec<SavedFile>> = keys
        .iter()
        .filter_map(|key| Some((key.key.clone(), saved.remove(&key.key)?)))
        .collect();
    let mut carried = BTreeMap::new();
    for (old_key, files) in saved {
        let mut taken: HashMap<&str, usize> = HashMap::new();
        let mut left = Vec::new();
        for file in files {
            match keys
                .iter()
                .find(|key| pattern_reads(&key.pattern, &file.path))
            {
                Some(key) => {
                    *taken.entry(key.input.as_str()).or_default() += 1;
                    merge_file(loaded.entry(key.key.clone()).or_default(), file);
                }
                None => left.push(file),
            }
        }
        for (input, count) in taken {
            eprintln!(
                "ringway: info: input '{input}' resumes {count} file(s) from the checkpoints saved for the path pattern '{old_key}' (their paths match it)"
            );
        }
        if let Some(example) = left.first() {
            eprintln!(
                "ringway: warning: the checkpoints of {} file(s) saved for the path pattern '{old_key}' (such as {}) match no file input of this run; they are kept unused until an input with that pattern returns",
                left.len(),
                example.path.display()
            );
            carried.insert(old_key, left);
        }
    }
    (loaded, carried)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{AckedOffsets, KnownFile};

    #[test]
    fn state_round_trips_and_falls_back_to_the_previous_copy() {
        let dir = crate::test_support::scratch_path("ckpt");
        let keys = vec![key("/x/*.log")];
        let names = [keys[0].key.clone()];
        let offsets = AckedOffsets::new(2);
        offsets.reset(1, 3, 77, 77);
        let input = InputState::new(names[0].clone(), Arc::clone(&offsets));
        let saved = SavedFile {
            path: "/x/a.log".into(),
            identity: (1, 2),
            fingerprint: Fingerprint { len: 5, hash: 9 },
            offset: 0,
            modified: None,
        };
        input.publish(vec![KnownFile {
            saved: saved.clone(),
            live: Some((1, 3)),
        }]);
        {
            let (mut checkpointer, loaded) = Checkpointer::open(&dir, &keys).unwrap();
            assert!(loaded.is_empty());
            checkpointer.add_input(Arc::clone(&input));
            checkpointer.write().unwrap();
            offsets.reset(1, 3, 99, 99);
            checkpointer.write().unwrap();
        }
        let (_, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        assert_eq!(loaded[&names[0]][&(1, 2)].offset, 99);
        // A torn current file: the previous copy (offset 77) is used.
        std::fs::write(dir.join(STATE_FILE), b"{\"version\":2,\"inp").unwrap();
        let (_, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        assert_eq!(loaded[&names[0]][&(1, 2)].offset, 77);
        // Both unusable: start per --from.
        std::fs::write(dir.join(PREVIOUS_FILE), b"").unwrap();
        let (_, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        assert!(loaded.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn key(pattern: &str) -> CheckpointKey {
        CheckpointKey {
            key: pattern.to_string(),
            pattern: pattern.to_string(),
            input: format!("file:{pattern}"),
        }
    }

    fn saved_file(path: &str, ino: u64, offset: u64) -> serde_json::Value {
        serde_json::json!({
            "path": path, "dev": 1, "ino": ino,
            "fingerprint_len": 5, "fingerprint": 9, "offset": offset,
        })
    }

    #[test]
    fn spec_keyed_state_files_are_read_under_their_path_pattern() {
        let dir = crate::test_support::scratch_path("ckpt-v1");
        std::fs::create_dir_all(&dir).unwrap();
        // What version 1 wrote after the input was edited once: the old
        // SPEC's entry carried, the new one's further on.
        let v1 = serde_json::json!({
            "version": 1,
            "inputs": {
                "file:/x/*.log": [saved_file("/x/a.log", 2, 100)],
                "file:/x/*.log,format=json,from=end": [
                    saved_file("/x/a.log", 2, 300),
                    saved_file("/x/b.log", 3, 50),
                ],
                "file:/y/c.log": [saved_file("/y/c.log", 4, 7)],
            }
        });
        std::fs::write(dir.join(STATE_FILE), v1.to_string()).unwrap();
        let keys = vec![key("/x/*.log")];
        let (mut checkpointer, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        let files = &loaded["/x/*.log"];
        assert_eq!(
            files[&(1, 2)].offset,
            300,
            "the furthest of the merged SPECs"
        );
        assert_eq!(files[&(1, 3)].offset, 50);
        assert_eq!(files.len(), 2);
        // Written back as version 2 (before the input's reader published
        // its list: as loaded), the unmatched input kept.
        checkpointer.add_input(InputState::new("/x/*.log".into(), AckedOffsets::new(1)));
        checkpointer.write().unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(written["version"], 2);
        assert_eq!(written["inputs"]["/x/*.log"].as_array().unwrap().len(), 2);
        assert_eq!(written["inputs"]["/y/c.log"][0]["offset"], 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_saved_under_an_edited_pattern_go_to_the_input_that_matches_them() {
        let mut saved = BTreeMap::new();
        saved.insert(
            "/x/*.log".to_string(),
            vec![
                parse_file(&saved_file("/x/app.log", 2, 10)).unwrap(),
                parse_file(&saved_file("/x/other.log", 3, 20)).unwrap(),
            ],
        );
        let keys = vec![key("/x/app*.log")];
        let (loaded, carried) = match_saved(saved, &keys);
        assert_eq!(loaded["/x/app*.log"].len(), 1);
        assert_eq!(loaded["/x/app*.log"][0].offset, 10);
        assert_eq!(carried["/x/*.log"].len(), 1);
        assert_eq!(carried["/x/*.log"][0].path, Path::new("/x/other.log"));
    }

    #[test]
    fn inputs_are_keyed_by_their_absolute_pattern_alone() {
        let defaults = crate::config::InputDefaults {
            format: crate::config::Format::Raw,
            from: crate::config::StartFrom::Beginning,
            udp_rcvbuf_bytes: 1 << 20,
            udp_sockets: 1,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        };
        let inputs: Vec<_> = [
            "file:/x/*.log",
            "file:/x/*.log,format=json",
            "udp:127.0.0.1:5514",
            "file:rel.log,from=end",
        ]
        .iter()
        .map(|spec| crate::config::parse_input_spec(spec, &defaults).unwrap())
        .collect();
        let keys = input_keys(&inputs);
        assert_eq!(keys[0].as_ref().unwrap().key, "/x/*.log");
        assert_eq!(keys[1].as_ref().unwrap().key, "/x/*.log #2");
        assert!(keys[2].is_none());
        let relative = keys[3].as_ref().unwrap();
        assert!(relative.key.starts_with('/') && relative.key.ends_with("/rel.log"));
    }
}
