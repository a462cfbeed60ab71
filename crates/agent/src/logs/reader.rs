//! The reading side of `StreamLogs`: a module's records, oldest first across the rotated
//! files, from a time (`since`), the last N lines (`tail`), and then new lines as they are
//! written (`follow`), across rotations. Pieces of long lines are joined again. Blocking
//! file I/O: run it on a blocking thread.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use super::{Record, current, rotated};

/// What to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Query {
    /// Only the last this many lines of what is already written.
    pub tail: Option<usize>,
    /// Only lines written at or after this time (seconds since the epoch).
    pub since: Option<i64>,
    /// Keep going with new lines until the receiver goes away.
    pub follow: bool,
}

/// One line of a module's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// When it was written (RFC 3339, nanoseconds).
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text, without the newline.
    pub text: String,
}

/// How often a followed file is checked for new lines.
const POLL: Duration = Duration::from_millis(200);
/// Rotated files looked for at most.
const MAX_ROTATED: u32 = 100;

/// Joins records into lines, per stream.
#[derive(Default)]
struct Assembler {
    pending: [Option<Line>; 2],
}

impl Assembler {
    fn push(&mut self, record: &Record<'_>) -> Option<Line> {
        let slot = &mut self.pending[usize::from(record.stream == "stderr")];
        let line = match slot.take() {
            Some(mut line) => {
                line.text.push_str(record.text);
                line
            }
            None => {
                Line { time: record.time.to_owned(), stream: record.stream.to_owned(), text: record.text.to_owned() }
            }
        };
        if record.partial {
            *slot = Some(line);
            None
        } else {
            Some(line)
        }
    }
}

/// A file read line by line, keeping an incomplete last line until it is finished.
struct Source {
    reader: BufReader<File>,
    inode: u64,
    partial: Vec<u8>,
}

impl Source {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let inode = file.metadata()?.ino();
        Ok(Self { reader: BufReader::new(file), inode, partial: Vec::new() })
    }

    /// The complete lines available now.
    fn lines(&mut self, mut each: impl FnMut(&str)) -> std::io::Result<()> {
        loop {
            let read = self.reader.read_until(b'\n', &mut self.partial)?;
            if read == 0 || self.partial.last() != Some(&b'\n') {
                return Ok(());
            }
            self.partial.pop();
            each(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
    }
}

/// Sends `module`'s lines matching `query` to `emit`, which returns `false` when the
/// receiver is gone. With `follow`, keeps going until then or until `alive` says so.
pub fn stream(
    dir: &Path,
    module: &str,
    query: Query,
    emit: &mut dyn FnMut(Line) -> bool,
    alive: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    let mut assembler = Assembler::default();
    let mut selected: VecDeque<Line> = VecDeque::new();
    let keep = |record: &Record<'_>, assembler: &mut Assembler, selected: &mut VecDeque<Line>| {
        if query.since.is_some_and(|since| record.unix_secs().is_some_and(|t| t < since)) {
            return;
        }
        if let Some(line) = assembler.push(record) {
            selected.push_back(line);
            if query.tail.is_some_and(|n| selected.len() > n) {
                selected.pop_front();
            }
        }
    };
    let mut older: Vec<_> = (1..=MAX_ROTATED).map(|n| rotated(dir, module, n)).take_while(|p| p.exists()).collect();
    older.reverse();
    for path in older {
        // A file rotated away meanwhile is simply skipped.
        if let Ok(mut source) = Source::open(&path) {
            source.lines(|l| {
                if let Some(record) = Record::parse(l) {
                    keep(&record, &mut assembler, &mut selected);
                }
            })?;
        }
    }
    let path = current(dir, module);
    let mut source = match Source::open(&path) {
        Ok(source) => Some(source),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(source) = source.as_mut() {
        source.lines(|l| {
            if let Some(record) = Record::parse(l) {
                keep(&record, &mut assembler, &mut selected);
            }
        })?;
    }
    for line in selected {
        if !emit(line) {
            return Ok(());
        }
    }
    if !query.follow {
        return Ok(());
    }
    let mut open = true;
    let mut send = |l: &str, assembler: &mut Assembler, open: &mut bool| {
        if let Some(line) = Record::parse(l).and_then(|r| assembler.push(&r)) {
            *open = *open && emit(line);
        }
    };
    loop {
        if let Some(source) = source.as_mut() {
            source.lines(|l| send(l, &mut assembler, &mut open))?;
        }
        if !open || !alive() {
            return Ok(());
        }
        let inode = std::fs::metadata(&path).map(|m| m.ino()).ok();
        if inode.is_none() || inode == source.as_ref().map(|s| s.inode) {
            std::thread::sleep(POLL);
            continue;
        }
        // Rotated (maybe more than once since the last look): the file being read is now
        // `.k`; read `.k-1` … `.1` whole, then start on the new current file.
        if let Some(old) = source.as_ref().map(|s| s.inode) {
            let rotated_paths: Vec<_> =
                (1..=MAX_ROTATED).map(|n| rotated(dir, module, n)).take_while(|p| p.exists()).collect();
            let k = rotated_paths.iter().position(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == old));
            for path in rotated_paths[..k.unwrap_or(0)].iter().rev() {
                if let Ok(mut between) = Source::open(path) {
                    between.lines(|l| send(l, &mut assembler, &mut open))?;
                }
            }
        }
        source = Source::open(&path).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::super::Rotation;
    use super::super::writer::RotatingLog;
    use super::*;

    fn collect(dir: &Path, query: Query) -> Vec<String> {
        let mut out = Vec::new();
        stream(
            dir,
            "m",
            query,
            &mut |line| {
                out.push(line.text);
                true
            },
            &|| true,
        )
        .unwrap();
        out
    }

    #[test]
    fn tail_and_since_select_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = RotatingLog::new(dir.path().into(), "m".into(), Rotation { max_size: 2048, max_files: 5 });
        for n in 0..100 {
            log.record(if n % 2 == 0 { "stdout" } else { "stderr" }, false, format!("line {n}").as_bytes());
        }
        assert!(rotated(dir.path(), "m", 1).exists());
        let all = collect(dir.path(), Query::default());
        let first = all.first().unwrap().clone();
        assert!(
            all.windows(2).all(|w| {
                let n = |s: &str| s[5..].parse::<u32>().unwrap();
                n(&w[0]) + 1 == n(&w[1])
            }),
            "in order across files: {all:?}"
        );
        assert_eq!(all.last().unwrap(), "line 99");
        assert!(first.starts_with("line "));
        assert_eq!(
            collect(dir.path(), Query { tail: Some(3), ..Default::default() }),
            ["line 97", "line 98", "line 99"]
        );
        assert!(collect(dir.path(), Query { since: Some(i64::MAX), ..Default::default() }).is_empty());
        assert_eq!(collect(dir.path(), Query { since: Some(0), ..Default::default() }).len(), all.len());
        assert!(collect(tempfile::tempdir().unwrap().path(), Query::default()).is_empty(), "no log yet");
    }

    #[test]
    fn long_lines_are_joined_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = RotatingLog::new(dir.path().into(), "m".into(), Rotation::default());
        let long = "z".repeat(super::super::MAX_LINE * 2 + 5);
        log.pump("stdout", format!("{long}\nshort\n").as_bytes());
        assert_eq!(collect(dir.path(), Query::default()), [long, "short".to_owned()]);
    }

    #[test]
    fn following_sees_new_lines_across_a_rotation_and_stops_with_the_receiver() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let log =
            std::sync::Arc::new(RotatingLog::new(path.clone(), "m".into(), Rotation { max_size: 1024, max_files: 10 }));
        log.record("stdout", false, b"before");
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..60 {
                    std::thread::sleep(Duration::from_millis(5));
                    log.record("stdout", false, format!("after {n:02} {}", "p".repeat(40)).as_bytes());
                }
            })
        };
        let mut seen = Vec::new();
        let query = Query { tail: Some(1), follow: true, ..Default::default() };
        let mut emit = |line: Line| {
            seen.push(line.text);
            !seen.last().is_some_and(|t| t.starts_with("after 59"))
        };
        stream(&path, "m", query, &mut emit, &|| true).unwrap();
        writer.join().unwrap();
        assert_eq!(seen[0], "before");
        let numbers: Vec<u32> = seen[1..].iter().map(|t| t[6..8].parse().unwrap()).collect();
        assert_eq!(numbers, (0..60).collect::<Vec<u32>>(), "every line once, in order, across rotations");
    }
}
