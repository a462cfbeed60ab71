//! A Prometheus endpoint: `GET /metrics` on a TCP listener answered with the text a daemon
//! renders for each scrape (anything else is 404), until shutdown.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `/metrics` on `listener` until `shutdown`; `render` produces the text exposition
/// for each scrape, or why it cannot (answered 503).
pub async fn serve<F, Fut>(listener: TcpListener, render: F, shutdown: CancellationToken)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let render = render.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let scrape = (request.uri().path() == "/metrics").then(&render);
                async move {
                    let Some(scrape) = scrape else {
                        return http::Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::from_static(b"see /metrics\n")));
                    };
                    match scrape.await {
                        Ok(text) => http::Response::builder()
                            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(text))),
                        Err(e) => http::Response::builder().status(503).body(Full::new(Bytes::from(e))),
                    }
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
            }
        });
    }
}
