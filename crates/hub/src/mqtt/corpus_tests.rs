//! The codec's kept fuzz corpus (`crates/hub/fuzz/corpus/mqtt/`): every packet of both
//! protocol versions as our encoder writes it, packets written by rumqttc, and inputs that
//! once needed care. Each entry, and thousands of deterministic mutations of it (bit flips,
//! byte changes, truncations, insertions, splices with another entry), must decode without
//! panicking, and whatever decodes must encode to something that decodes the same.
//! `OUTPOST_WRITE_CORPUS=1 cargo test -p outpost-hub corpus` rewrites the generated entries;
//! hand-added files are kept.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use bytes::BytesMut;

use super::tests::{bytes_of, every_packet};
use super::*;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mqtt")
}

/// A small deterministic generator (xorshift64*), so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            2 => bytes.truncate(rng.below(bytes.len() + 1)),
            3 => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, rng.next() as u8);
            }
            4 if !other.is_empty() => {
                let cut = rng.below(bytes.len() + 1);
                let from = rng.below(other.len());
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => {
                // Interesting values where lengths and flags live.
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len().min(8));
                    bytes[i] = [0x00, 0x7F, 0x80, 0xFF, 0x30, 0x32][rng.below(6)];
                }
            }
        }
    }
    bytes
}

/// Decodes `bytes` in every state; what decodes must round-trip.
fn check(bytes: &[u8]) {
    for state in [None, Some(Version::V311), Some(Version::V5)] {
        if let Ok(Some((decoded, used))) = decode(bytes, state, 1 << 16) {
            assert!(used <= bytes.len());
            let version = match (&decoded, state) {
                (Packet::Connect(c), _) => c.version,
                (_, Some(v)) => v,
                (_, None) => Version::V311,
            };
            let mut again = BytesMut::new();
            encode(&decoded, version, &mut again).unwrap();
            let (redecoded, _) = decode(&again, state, 1 << 16).unwrap().unwrap();
            assert_eq!(redecoded, decoded, "input {bytes:02x?}");
        }
    }
}

fn generated() -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    for version in [Version::V311, Version::V5] {
        let tag = if version == Version::V5 { "v5" } else { "v311" };
        for (i, packet) in every_packet(version).iter().enumerate() {
            entries.push((
                format!("{tag}-{i:02}-{}.bin", packet.name().to_lowercase()),
                bytes_of(packet, version).to_vec(),
            ));
        }
    }
    // Written by another implementation.
    use rumqttc::mqttbytes::v4;
    let mut buf = BytesMut::new();
    v4::Connect::new("dev1/m").write(&mut buf).unwrap();
    entries.push(("rumqttc-connect.bin".into(), buf.to_vec()));
    let mut buf = BytesMut::new();
    let mut publish =
        v4::Publish::new("devices/d/messages/events/a=b", rumqttc::mqttbytes::QoS::AtLeastOnce, vec![1, 2, 3]);
    publish.pkid = 9;
    publish.write(&mut buf).unwrap();
    entries.push(("rumqttc-publish.bin".into(), buf.to_vec()));
    entries
}

#[test]
fn the_corpus_and_its_mutations_never_panic() {
    let dir = corpus_dir();
    if std::env::var_os("OUTPOST_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in generated() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    entries.sort();
    assert!(entries.len() >= 30, "the corpus at {} is missing", dir.display());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (i, (_, bytes)) in entries.iter().enumerate() {
        check(bytes);
        let other = &entries[(i + 1) % entries.len()].1;
        for _ in 0..10_000 {
            check(&mutate(&mut rng, bytes, other));
        }
    }
}
