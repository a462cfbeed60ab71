//! Load generator for the workload API's sign endpoint, used by `cargo xtask bench identity`.
//!
//! usage: sign_load SOCKET MODULE GENERATION SECONDS CONNECTIONS
//! Each connection sends sign requests back to back (HTTP/1.1 keep-alive) for SECONDS and
//! records every latency; prints one JSON line with the count, rate and percentiles.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn connection(socket: PathBuf, target: String, body: Bytes, until: Instant) -> Result<Vec<u32>, Error> {
    let stream = tokio::net::UnixStream::connect(&socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let request =
            hyper::Request::post(target.as_str()).header("host", "localhost").body(Full::new(body.clone()))?;
        let start = Instant::now();
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        if !status.is_success() {
            return Err(format!("sign returned {status}").into());
        }
        latencies.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    Ok(latencies)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, module, generation, seconds, connections] = args.as_slice() else {
        return Err("usage: sign_load SOCKET MODULE GENERATION SECONDS CONNECTIONS".into());
    };
    let target = format!("/modules/{module}/genid/{generation}/sign?api-version=2019-01-30");
    let body = Bytes::from(
        r#"{"keyId":"primary","algo":"HMACSHA256","data":"b3V0cG9zdC5sb2NhbCUyRmRldmljZXMlMkZkZXYlMkZtb2R1bGVzJTJGYmVuY2gKMTc5NTQ2Nzk4OQ=="}"#,
    );
    let duration = Duration::from_secs(seconds.parse()?);
    let start = Instant::now();
    let until = start + duration;
    let tasks: Vec<_> = (0..connections.parse::<usize>()?)
        .map(|_| tokio::spawn(connection(PathBuf::from(socket), target.clone(), body.clone(), until)))
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{{\"requests\":{},\"seconds\":{:.2},\"per_second\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed,
        percentile(&all, 50.0),
        percentile(&all, 99.0)
    );
    Ok(())
}
