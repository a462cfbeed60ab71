//! Output helpers: aligned tables for people, JSON for scripts, and error messages that turn
//! gRPC statuses into plain sentences.

use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

/// Prints `rows` under `headers` with aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", text.join("   ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A one-line description of `e`, with the gRPC status made readable.
pub fn describe(e: &anyhow::Error) -> String {
    if let Some(status) = e.downcast_ref::<tonic::Status>() {
        let what = match status.code() {
            tonic::Code::NotFound => "not found",
            tonic::Code::InvalidArgument => "invalid argument",
            tonic::Code::PermissionDenied => "permission denied",
            tonic::Code::Unauthenticated => "unauthenticated",
            tonic::Code::Unavailable => "service unavailable",
            _ => "request failed",
        };
        return format!("{what}: {}", status.message());
    }
    format!("{e:#}")
}
