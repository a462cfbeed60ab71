//! `outpost pull IMAGE` (through the agent, with the deployment's registry credentials,
//! showing progress) and `outpost import FILE` (an OCI layout archive, for devices without a
//! registry).

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use outpost_proto::agent::v1 as pb;

use crate::commands::modules::client;
use crate::output::{self, Format};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `outpost pull IMAGE`.
pub async fn pull(image: String, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let mut stream =
        client(socket).await?.pull_image(pb::PullImageRequest { image: image.clone() }).await?.into_inner();
    let tty = std::io::stderr().is_terminal() && format == Format::Table;
    let mut last_tenth = None;
    let mut last = pb::PullImageProgress::default();
    while let Some(progress) = stream.message().await? {
        let percent = (progress.bytes_done * 100).checked_div(progress.bytes_total).unwrap_or(0);
        let line = format!(
            "{image}: {}/{} layers, {:.1}/{:.1} MiB ({percent}%)",
            progress.layers_done,
            progress.layers_total,
            mib(progress.bytes_done),
            mib(progress.bytes_total)
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if format == Format::Table && last_tenth != Some(percent / 10) {
            eprintln!("{line}");
            last_tenth = Some(percent / 10);
        }
        last = progress;
    }
    if tty {
        eprintln!();
    }
    match format {
        Format::Json => output::json(&serde_json::json!({
            "image": image, "digest": last.digest, "layers": last.layers_total, "bytes": last.bytes_total
        }))?,
        Format::Table => println!("pulled {image} ({})", last.digest),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outpost import FILE [--name NAME]`.
pub async fn import(file: &Path, name: Option<String>, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let path = std::path::absolute(file)?;
    let request = pb::ImportImageRequest { path: path.display().to_string(), name: name.unwrap_or_default() };
    let imported = client(socket).await?.import_image(request).await?.into_inner();
    match format {
        Format::Json => output::json(&serde_json::json!({"image": imported.name, "digest": imported.digest}))?,
        Format::Table => println!("imported {} ({})", imported.name, imported.digest),
    }
    Ok(ExitCode::SUCCESS)
}
