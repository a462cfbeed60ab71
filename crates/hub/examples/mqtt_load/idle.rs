//! Idle connections, to measure what a broker spends per connection: N clients connect and
//! stay; once all are in, one line is printed, and they hold until standard input closes.

use std::io::BufRead as _;

use crate::client::{Client, Error};

/// `idle PORT CONNECTIONS`.
pub async fn run(args: &[String]) -> Result<String, Error> {
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let port = arg(0, 1883) as u16;
    let count = arg(1, 1_000);
    let mut clients = Vec::with_capacity(count);
    for start in (0..count).step_by(200) {
        let connecting: Vec<_> = (start..(start + 200).min(count))
            .map(|n| tokio::spawn(async move { Client::connect(port, &format!("idle-{n}"), false).await }))
            .collect();
        for task in connecting {
            clients.push(task.await??);
        }
    }
    println!("{{\"connected\": {}}}", clients.len());
    tokio::task::spawn_blocking(|| std::io::stdin().lock().lines().count()).await?;
    drop(clients);
    Ok(format!("{{\"closed\": {count}}}"))
}
