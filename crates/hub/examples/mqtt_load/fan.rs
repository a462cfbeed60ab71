//! Throughput with fan-in and fan-out: P publishers each send their share to their own topic
//! (`bench/{p}`), S subscribers each take every message (`bench/+`). 1→1 is plain
//! throughput.

use std::time::Instant;

use bytes::Bytes;
use outpost_hub::mqtt::QoS;

use crate::client::{Client, Error};

/// `fan PORT PUBLISHERS SUBSCRIBERS MESSAGES QOS [PAYLOAD_BYTES] [WINDOW] [persistent]`;
/// MESSAGES in total (split among the publishers), each delivered to every subscriber.
pub async fn run(args: &[String]) -> Result<String, Error> {
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let port = arg(0, 1883) as u16;
    let publishers = arg(1, 1).max(1);
    let subscribers = arg(2, 1).max(1);
    let per_publisher = arg(3, 100_000) / publishers;
    let qos = if arg(4, 0) == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
    let payload = Bytes::from(vec![b'x'; arg(5, 64)]);
    let window = arg(6, 100);
    let persistent = args.get(7).is_some_and(|a| a == "persistent");
    let messages = per_publisher * publishers;

    let mut receivers = Vec::new();
    for s in 0..subscribers {
        let mut client = Client::connect(port, &format!("fan-sub-{s}"), persistent).await?;
        client.subscribe("bench/+", qos).await?;
        receivers.push(tokio::spawn(async move {
            let mut last = Instant::now();
            let received = client.receive_all(messages, |_| last = Instant::now()).await?;
            Ok::<(usize, Instant), Error>((received, last))
        }));
    }
    let mut senders = Vec::new();
    for p in 0..publishers {
        senders.push(Client::connect(port, &format!("fan-pub-{p}"), false).await?);
    }
    let start = Instant::now();
    let mut publishing = Vec::new();
    for (p, mut client) in senders.into_iter().enumerate() {
        let payload = payload.clone();
        publishing.push(tokio::spawn(async move {
            client.publish_all(&format!("bench/{p}"), qos, per_publisher, &payload, window).await
        }));
    }
    for task in publishing {
        task.await??;
    }
    let (mut end, mut deliveries) = (start, 0);
    for task in receivers {
        let (received, last) = task.await??;
        deliveries += received;
        end = end.max(last);
    }
    let seconds = end.duration_since(start).as_secs_f64();
    let lost = messages * subscribers - deliveries;
    Ok(format!(
        "{{\"messages\": {messages}, \"deliveries\": {deliveries}, \"lost\": {lost}, \"qos\": {}, \"seconds\": {seconds:.3}, \"rate\": {:.0}}}",
        qos as u8,
        deliveries as f64 / seconds
    ))
}
