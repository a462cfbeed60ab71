//! The writing side, run by `outpost-logger` for each task: records from a stream appended
//! to the module's file, rotated at the size cap. Writing never blocks the module for long
//! and never stops reading its pipes: if the disk is full, records are dropped (and counted
//! in a notice once writing works again) rather than the module stalling on a full pipe.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use super::{MAX_LINE, Rotation, current, rotated, timestamp};

/// A module's log file with rotation, shared by the stdout and stderr pumps.
#[derive(Debug)]
pub struct RotatingLog {
    dir: PathBuf,
    module: String,
    rotation: Rotation,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: Option<File>,
    size: u64,
    dropped: u64,
}

impl RotatingLog {
    /// The log of `module` in `dir` (created if needed).
    pub fn new(dir: PathBuf, module: String, rotation: Rotation) -> Self {
        let rotation = Rotation { max_files: rotation.max_files.max(1), max_size: rotation.max_size.max(1024) };
        Self { dir, module, rotation, state: Mutex::new(State { file: None, size: 0, dropped: 0 }) }
    }

    fn open(&self) -> std::io::Result<(File, u64)> {
        std::fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new().create(true).append(true).open(current(&self.dir, &self.module))?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    fn rotate(&self) -> std::io::Result<()> {
        let keep = self.rotation.max_files;
        if keep == 1 {
            return std::fs::remove_file(current(&self.dir, &self.module));
        }
        let _ = std::fs::remove_file(rotated(&self.dir, &self.module, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = std::fs::rename(rotated(&self.dir, &self.module, n), rotated(&self.dir, &self.module, n + 1));
        }
        std::fs::rename(current(&self.dir, &self.module), rotated(&self.dir, &self.module, 1))
    }

    /// Appends one record of `stream`.
    pub fn record(&self, stream: &str, partial: bool, text: &[u8]) {
        let mut line = Vec::with_capacity(text.len() + 48);
        let time = timestamp(SystemTime::now());
        line.extend_from_slice(time.as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.as_bytes());
        line.extend_from_slice(if partial { b" P " } else { b" F " });
        line.extend_from_slice(text);
        line.push(b'\n');
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.file.is_some() && state.size + line.len() as u64 > self.rotation.max_size {
            state.file = None;
            if let Err(e) = self.rotate() {
                eprintln!("outpost-logger: cannot rotate {}: {e}", current(&self.dir, &self.module).display());
            }
        }
        if state.file.is_none() {
            match self.open() {
                Ok((file, size)) => {
                    state.file = Some(file);
                    state.size = size;
                }
                Err(_) => {
                    state.dropped += 1;
                    return;
                }
            }
        }
        if state.dropped > 0 {
            let notice = format!(
                "{time} stderr F [outpost-logger: {} records dropped: the log could not be written]\n",
                state.dropped
            );
            if let Some(file) = state.file.as_mut()
                && file.write_all(notice.as_bytes()).is_ok()
            {
                state.size += notice.len() as u64;
                state.dropped = 0;
            }
        }
        let written = state.file.as_mut().map(|f| f.write_all(&line));
        match written {
            Some(Ok(())) => state.size += line.len() as u64,
            _ => {
                state.dropped += 1;
                state.file = None;
            }
        }
    }

    /// Copies `input` (one of the task's pipes) into records of `stream` until it closes.
    pub fn pump(&self, stream: &str, input: impl Read) {
        let mut reader = BufReader::with_capacity(64 * 1024, input);
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            // At most MAX_LINE bytes per record: longer lines become partial records.
            let read = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line);
            match read {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        self.record(stream, false, &line);
                    } else if line.len() >= MAX_LINE {
                        self.record(stream, true, &line);
                    } else {
                        // The pipe closed in the middle of a line.
                        self.record(stream, false, &line);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Record;
    use super::*;

    fn lines(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_become_records_and_long_ones_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let log = RotatingLog::new(dir.path().into(), "m".into(), Rotation::default());
        let long = "x".repeat(MAX_LINE + 10);
        let input = format!("hello\n{long}\nno newline at the end");
        log.pump("stdout", input.as_bytes());
        let written = lines(&current(dir.path(), "m"));
        let records: Vec<Record<'_>> = written.iter().map(|l| Record::parse(l).unwrap()).collect();
        assert_eq!(records.len(), 4);
        assert_eq!((records[0].text, records[0].partial), ("hello", false));
        assert_eq!((records[1].text.len(), records[1].partial), (MAX_LINE, true));
        assert_eq!((records[2].text.len(), records[2].partial), (10, false));
        assert_eq!(records[3].text, "no newline at the end");
        assert!(records.iter().all(|r| r.stream == "stdout"));
    }

    #[test]
    fn files_rotate_at_the_cap_and_the_oldest_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let log = RotatingLog::new(dir.path().into(), "m".into(), Rotation { max_size: 1024, max_files: 3 });
        for n in 0..200 {
            log.record("stdout", false, format!("line {n:04} {}", "y".repeat(30)).as_bytes());
        }
        let sizes: Vec<u64> = [current(dir.path(), "m"), rotated(dir.path(), "m", 1), rotated(dir.path(), "m", 2)]
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect();
        assert!(sizes.iter().all(|s| *s <= 1024), "{sizes:?}");
        assert!(!rotated(dir.path(), "m", 3).exists());
        let newest = lines(&current(dir.path(), "m"));
        assert!(newest.last().unwrap().contains("line 0199"));
        let oldest = lines(&rotated(dir.path(), "m", 2));
        let previous = lines(&rotated(dir.path(), "m", 1));
        let first_of = |l: &[String]| Record::parse(&l[0]).unwrap().text[5..9].parse::<u32>().unwrap();
        assert!(first_of(&oldest) < first_of(&previous), "files keep their order");
    }
}
