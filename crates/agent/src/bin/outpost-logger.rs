//! outpost-logger: containerd's `binary://` logger for Outpost modules. The task's shim
//! starts one per task with the stdout pipe on fd 3, stderr on fd 4 and a readiness pipe on
//! fd 5, `CONTAINER_ID` in the environment and our arguments as `key value` pairs (`dir`,
//! `max-size`, `max-files`). It writes the module's rotating log (see
//! `outpost_agent::logs`) until both pipes close, which is when the task has exited.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use outpost_agent::logs::Rotation;
use outpost_agent::logs::writer::RotatingLog;

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "outpost-logger: {problem}\n\
         usage: outpost-logger dir DIR [max-size BYTES] [max-files N] (started by containerd's shim \
         with CONTAINER_ID set and the task's pipes on fds 3 and 4)"
    );
    ExitCode::from(2)
}

/// An inherited descriptor, reopened through /proc (no unsafe code needed).
fn inherited(fd: u32, write: bool) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().read(!write).write(write).open(format!("/proc/self/fd/{fd}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.len().is_multiple_of(2) {
        return usage("arguments come in `key value` pairs");
    }
    let mut dir = None;
    let mut rotation = Rotation::default();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair[1].as_str()) {
            ("dir", value) => dir = Some(PathBuf::from(value)),
            ("max-size", value) => match value.parse() {
                Ok(n) => rotation.max_size = n,
                Err(_) => return usage(&format!("max-size {value:?} is not a number of bytes")),
            },
            ("max-files", value) => match value.parse() {
                Ok(n) => rotation.max_files = n,
                Err(_) => return usage(&format!("max-files {value:?} is not a number")),
            },
            (key, _) => return usage(&format!("unknown argument {key:?}")),
        }
    }
    let Some(dir) = dir else { return usage("dir is required") };
    let module = match std::env::var("CONTAINER_ID") {
        Ok(id) if !id.is_empty() && !id.contains('/') && !id.starts_with('.') => id,
        _ => return usage("CONTAINER_ID is not set to a container id"),
    };
    let (stdout, stderr) = match (inherited(3, false), inherited(4, false)) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => return usage(&format!("the task's pipes are not on fds 3 and 4: {e}")),
    };
    let log = Arc::new(RotatingLog::new(dir, module, rotation));
    // Ready: the shim waits for a byte (or EOF) on fd 5 before starting the task.
    if let Ok(mut ready) = inherited(5, true) {
        let _ = std::io::Write::write_all(&mut ready, b"1");
    }
    let err_log = log.clone();
    let stderr_pump = std::thread::spawn(move || err_log.pump("stderr", stderr));
    log.pump("stdout", stdout);
    let _ = stderr_pump.join();
    ExitCode::SUCCESS
}
