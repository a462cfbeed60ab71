//! The least of SNTP (RFC 4330) for the clock check: a client request, and the server's
//! transmit time out of its answer. Sans-IO; the check sends and receives over UDP.

/// Seconds between 1900-01-01 (NTP's epoch) and 1970-01-01.
const NTP_TO_UNIX: u64 = 2_208_988_800;

/// A client request: version 4, mode 3 (client), everything else zero.
pub fn request() -> [u8; 48] {
    let mut packet = [0u8; 48];
    packet[0] = (4 << 3) | 3;
    packet
}

/// The server's transmit time, Unix seconds with fraction, from its answer; `None` unless it
/// is a server answer (mode 4) with a set clock (stratum 1–15).
pub fn transmit_time(answer: &[u8]) -> Option<f64> {
    if answer.len() < 48 || answer[0] & 0x7 != 4 || !(1..=15).contains(&answer[1]) {
        return None;
    }
    let seconds = u64::from(u32::from_be_bytes(answer[40..44].try_into().ok()?));
    let fraction = f64::from(u32::from_be_bytes(answer[44..48].try_into().ok()?)) / 4_294_967_296.0;
    seconds.checked_sub(NTP_TO_UNIX).map(|unix| unix as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers() {
        assert_eq!(request()[0], 0x23);
        let mut answer = [0u8; 48];
        answer[0] = (4 << 3) | 4;
        answer[1] = 2;
        answer[40..44].copy_from_slice(&((NTP_TO_UNIX + 1_700_000_000) as u32).to_be_bytes());
        answer[44..48].copy_from_slice(&(1u32 << 31).to_be_bytes());
        assert_eq!(transmit_time(&answer), Some(1_700_000_000.5));
        answer[1] = 0;
        assert_eq!(transmit_time(&answer), None, "an unsynchronised server (stratum 0)");
        answer[1] = 2;
        answer[0] = (4 << 3) | 3;
        assert_eq!(transmit_time(&answer), None, "not a server answer");
        assert_eq!(transmit_time(&answer[..20]), None);
    }
}
