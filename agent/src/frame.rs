//! Frame codec of the host ⇄ agent channel (docs/protocol.md, "Frames").
//!
//! Header: `len: u32be` (= 5 + payload length), `type: u8`, `stream: u32be`, then the payload.
//! Every rule of the table in protocol.md is checked by the decoder; a violation is a protocol
//! error and the connection is dropped by the caller.

use std::fmt;
use std::io::{self, Read};

/// Largest payload of one frame.
pub const MAX_PAYLOAD: usize = 65536;
/// Bytes before the payload: len (4) + type (1) + stream (4).
pub const HEADER_LEN: usize = 9;
/// `len` counts type + stream + payload.
const LEN_OVERHEAD: usize = 5;

pub const TYPE_HELLO: u8 = 1;
pub const TYPE_MSG: u8 = 2;
pub const TYPE_DATA: u8 = 3;
pub const TYPE_CLOSE: u8 = 4;
pub const TYPE_CREDIT: u8 = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// JSON handshake payload, stream 0.
    Hello(Vec<u8>),
    /// JSON control message, stream 0.
    Msg(Vec<u8>),
    /// 1..=MAX_PAYLOAD bytes of a stream.
    Data { stream: u32, data: Vec<u8> },
    /// End of a stream (no payload).
    Close { stream: u32 },
    /// The sender of CREDIT accepts `credit` more bytes on `stream`.
    Credit { stream: u32, credit: u32 },
}

impl Frame {
    pub fn type_byte(&self) -> u8 {
        match self {
            Frame::Hello(_) => TYPE_HELLO,
            Frame::Msg(_) => TYPE_MSG,
            Frame::Data { .. } => TYPE_DATA,
            Frame::Close { .. } => TYPE_CLOSE,
            Frame::Credit { .. } => TYPE_CREDIT,
        }
    }

    pub fn stream(&self) -> u32 {
        match self {
            Frame::Hello(_) | Frame::Msg(_) => 0,
            Frame::Data { stream, .. } | Frame::Close { stream } | Frame::Credit { stream, .. } => {
                *stream
            }
        }
    }

    pub fn type_name(&self) -> &'static str {
        type_name(self.type_byte())
    }
}

pub fn type_name(t: u8) -> &'static str {
    match t {
        TYPE_HELLO => "HELLO",
        TYPE_MSG => "MSG",
        TYPE_DATA => "DATA",
        TYPE_CLOSE => "CLOSE",
        TYPE_CREDIT => "CREDIT",
        _ => "unknown",
    }
}

/// Why a byte sequence is not a valid frame (or could not be read).
#[derive(Debug)]
pub enum FrameError {
    LenTooShort(u32),
    LenTooLarge(u32),
    UnknownType(u8),
    /// HELLO/MSG on a stream other than 0, or DATA/CLOSE/CREDIT on stream 0.
    BadStream { frame_type: u8, stream: u32 },
    EmptyData { stream: u32 },
    ClosePayload { stream: u32, len: usize },
    CreditSize { stream: u32, len: usize },
    CreditZero { stream: u32 },
    /// The peer closed the connection in the middle of a frame.
    Truncated,
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LenTooShort(l) => write!(f, "frame len {} below minimum 5", l),
            FrameError::LenTooLarge(l) => {
                write!(f, "frame len {} above maximum {}", l, LEN_OVERHEAD + MAX_PAYLOAD)
            }
            FrameError::UnknownType(t) => write!(f, "unknown frame type {}", t),
            FrameError::BadStream { frame_type, stream } => {
                write!(f, "{} frame on invalid stream {}", type_name(*frame_type), stream)
            }
            FrameError::EmptyData { stream } => write!(f, "empty DATA frame on stream {}", stream),
            FrameError::ClosePayload { stream, len } => {
                write!(f, "CLOSE frame on stream {} with {}-byte payload", stream, len)
            }
            FrameError::CreditSize { stream, len } => {
                write!(f, "CREDIT frame on stream {} with {}-byte payload (want 4)", stream, len)
            }
            FrameError::CreditZero { stream } => write!(f, "CREDIT of 0 on stream {}", stream),
            FrameError::Truncated => write!(f, "connection ended inside a frame"),
            FrameError::Io(e) => write!(f, "read error: {}", e),
        }
    }
}

impl std::error::Error for FrameError {}

/// Checks the header fields that can be checked before the payload is read.
fn check_header(len: u32, frame_type: u8, stream: u32) -> Result<usize, FrameError> {
    if (len as usize) < LEN_OVERHEAD {
        return Err(FrameError::LenTooShort(len));
    }
    if len as usize > LEN_OVERHEAD + MAX_PAYLOAD {
        return Err(FrameError::LenTooLarge(len));
    }
    let payload_len = len as usize - LEN_OVERHEAD;
    match frame_type {
        TYPE_HELLO | TYPE_MSG => {
            if stream != 0 {
                return Err(FrameError::BadStream { frame_type, stream });
            }
        }
        TYPE_DATA | TYPE_CLOSE | TYPE_CREDIT => {
            if stream == 0 {
                return Err(FrameError::BadStream { frame_type, stream });
            }
            match frame_type {
                TYPE_DATA if payload_len == 0 => return Err(FrameError::EmptyData { stream }),
                TYPE_CLOSE if payload_len != 0 => {
                    return Err(FrameError::ClosePayload { stream, len: payload_len })
                }
                TYPE_CREDIT if payload_len != 4 => {
                    return Err(FrameError::CreditSize { stream, len: payload_len })
                }
                _ => {}
            }
        }
        other => return Err(FrameError::UnknownType(other)),
    }
    Ok(payload_len)
}

fn build(frame_type: u8, stream: u32, payload: Vec<u8>) -> Result<Frame, FrameError> {
    Ok(match frame_type {
        TYPE_HELLO => Frame::Hello(payload),
        TYPE_MSG => Frame::Msg(payload),
        TYPE_DATA => Frame::Data { stream, data: payload },
        TYPE_CLOSE => Frame::Close { stream },
        TYPE_CREDIT => {
            let mut b = [0u8; 4];
            b.copy_from_slice(&payload[..4]);
            let credit = u32::from_be_bytes(b);
            if credit == 0 {
                return Err(FrameError::CreditZero { stream });
            }
            Frame::Credit { stream, credit }
        }
        other => return Err(FrameError::UnknownType(other)),
    })
}

fn parse_header(h: &[u8; HEADER_LEN]) -> (u32, u8, u32) {
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
    (len, h[4], stream)
}

/// Decodes one frame from the start of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a valid frame, `Ok(Some((frame, used)))`
/// when a whole frame is there. The header is validated as soon as it is complete, so an
/// oversized `len` is rejected without waiting for its payload.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    if buf.len() >= 4 {
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if (len as usize) < LEN_OVERHEAD {
            return Err(FrameError::LenTooShort(len));
        }
        if len as usize > LEN_OVERHEAD + MAX_PAYLOAD {
            return Err(FrameError::LenTooLarge(len));
        }
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(&buf[..HEADER_LEN]);
    let (len, frame_type, stream) = parse_header(&h);
    let payload_len = check_header(len, frame_type, stream)?;
    let total = HEADER_LEN + payload_len;
    if buf.len() < total {
        return Ok(None);
    }
    let frame = build(frame_type, stream, buf[HEADER_LEN..total].to_vec())?;
    Ok(Some((frame, total)))
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before the first byte.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<bool, FrameError> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => {
                return if done == 0 { Ok(false) } else { Err(FrameError::Truncated) };
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(true)
}

/// Reads one frame. `Ok(None)` = the connection ended cleanly between frames.
pub fn read_frame<R: Read + ?Sized>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut h = [0u8; HEADER_LEN];
    if !read_full(r, &mut h)? {
        return Ok(None);
    }
    let (len, frame_type, stream) = parse_header(&h);
    let payload_len = check_header(len, frame_type, stream)?;
    let mut payload = vec![0u8; payload_len];
    if payload_len > 0 && !read_full(r, &mut payload)? {
        return Err(FrameError::Truncated);
    }
    build(frame_type, stream, payload).map(Some)
}

/// Encodes a frame. Refuses frames that the decoder would reject, so the agent can never send
/// a protocol violation.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, FrameError> {
    let credit_bytes;
    let payload: &[u8] = match frame {
        Frame::Hello(p) | Frame::Msg(p) => p,
        Frame::Data { data, .. } => data,
        Frame::Close { .. } => &[],
        Frame::Credit { credit, stream } => {
            if *credit == 0 {
                return Err(FrameError::CreditZero { stream: *stream });
            }
            credit_bytes = credit.to_be_bytes();
            &credit_bytes
        }
    };
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameError::LenTooLarge((payload.len() + LEN_OVERHEAD) as u32));
    }
    let len = (payload.len() + LEN_OVERHEAD) as u32;
    check_header(len, frame.type_byte(), frame.stream())?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.push(frame.type_byte());
    out.extend_from_slice(&frame.stream().to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Parses lowercase/uppercase hex, ignoring whitespace (the fixture format).
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".to_string());
    }
    fn val(c: u8) -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("bad hex digit {:?}", c as char)),
        }
    }
    digits
        .chunks(2)
        .map(|p| Ok(val(p[0])? << 4 | val(p[1])?))
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test/fixtures/frames")
    }

    fn fixture_names(bad: bool) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
            .expect("fixture dir readable")
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".hex") && n.starts_with("bad-") == bad)
            .map(|n| n.trim_end_matches(".hex").to_string())
            .collect();
        names.sort();
        names
    }

    fn read_hex(name: &str) -> Vec<u8> {
        let text = std::fs::read_to_string(fixtures_dir().join(format!("{}.hex", name)))
            .expect("fixture readable");
        from_hex(&text).expect("fixture is hex")
    }

    #[test]
    fn good_fixtures_decode_match_description_and_reencode() {
        let names = fixture_names(false);
        assert!(names.len() >= 8, "expected the golden frames, found {:?}", names);
        for name in names {
            let bytes = read_hex(&name);
            let desc: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(fixtures_dir().join(format!("{}.json", name)))
                    .expect("description readable"),
            )
            .expect("description is JSON");
            let (frame, used) = decode(&bytes)
                .unwrap_or_else(|e| panic!("{}: {}", name, e))
                .unwrap_or_else(|| panic!("{}: incomplete", name));
            assert_eq!(used, bytes.len(), "{}: trailing bytes", name);
            assert_eq!(frame.type_name(), desc["type"].as_str().expect("type"), "{}", name);
            assert_eq!(u64::from(frame.stream()), desc["stream"].as_u64().expect("stream"));
            match &frame {
                Frame::Hello(p) | Frame::Msg(p) => {
                    assert_eq!(
                        std::str::from_utf8(p).expect("utf-8"),
                        desc["text"].as_str().expect("text"),
                        "{}",
                        name
                    );
                }
                Frame::Data { data, .. } => {
                    assert_eq!(to_hex(data), desc["hex"].as_str().expect("hex"), "{}", name)
                }
                Frame::Close { .. } => {
                    assert_eq!(desc["hex"].as_str().unwrap_or(""), "", "{}", name)
                }
                Frame::Credit { credit, .. } => {
                    assert_eq!(u64::from(*credit), desc["credit"].as_u64().expect("credit"))
                }
            }
            assert_eq!(encode(&frame).expect("re-encode"), bytes, "{}: re-encode", name);
            // The streaming reader agrees with the buffer decoder.
            let mut cur = std::io::Cursor::new(bytes.clone());
            assert_eq!(read_frame(&mut cur).expect("read_frame"), Some(frame.clone()));
            assert_eq!(read_frame(&mut cur).expect("clean eof"), None);
            // Every strict prefix is "incomplete", never an error.
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).expect("prefix").is_none(), "{} cut {}", name, cut);
            }
        }
    }

    #[test]
    fn bad_fixtures_are_rejected() {
        let names = fixture_names(true);
        assert!(names.len() >= 5, "expected bad-* fixtures, found {:?}", names);
        for name in names {
            let bytes = read_hex(&name);
            match decode(&bytes) {
                Err(_) => {}
                Ok(r) => panic!("{}: accepted: {:?}", name, r),
            }
            let mut cur = std::io::Cursor::new(bytes);
            assert!(read_frame(&mut cur).is_err(), "{}: read_frame accepted", name);
        }
    }

    #[test]
    fn payload_limit() {
        let max = Frame::Data { stream: 1, data: vec![7; MAX_PAYLOAD] };
        let bytes = encode(&max).expect("max payload encodes");
        assert_eq!(bytes.len(), HEADER_LEN + MAX_PAYLOAD);
        assert_eq!(&bytes[..4], &((MAX_PAYLOAD + 5) as u32).to_be_bytes());
        assert_eq!(decode(&bytes).expect("decodes").map(|(f, n)| (f, n)), Some((max, bytes.len())));
        let over = Frame::Data { stream: 1, data: vec![7; MAX_PAYLOAD + 1] };
        assert!(encode(&over).is_err());
        assert!(matches!(decode(&[0, 1, 0, 6]), Err(FrameError::LenTooLarge(65542))));
    }

    #[test]
    fn encoder_refuses_invalid_frames() {
        assert!(encode(&Frame::Data { stream: 0, data: vec![1] }).is_err());
        assert!(encode(&Frame::Data { stream: 1, data: vec![] }).is_err());
        assert!(encode(&Frame::Close { stream: 0 }).is_err());
        assert!(encode(&Frame::Credit { stream: 2, credit: 0 }).is_err());
    }

    #[test]
    fn truncated_stream_is_an_error_not_eof() {
        let bytes = encode(&Frame::Data { stream: 2, data: b"hello".to_vec() }).expect("enc");
        let mut cur = std::io::Cursor::new(bytes[..bytes.len() - 1].to_vec());
        assert!(matches!(read_frame(&mut cur), Err(FrameError::Truncated)));
        let mut cur = std::io::Cursor::new(bytes[..3].to_vec());
        assert!(matches!(read_frame(&mut cur), Err(FrameError::Truncated)));
    }

    #[test]
    fn several_frames_in_one_buffer() {
        let mut buf = encode(&Frame::Close { stream: 3 }).expect("enc");
        buf.extend(encode(&Frame::Credit { stream: 2, credit: 9 }).expect("enc"));
        let (f1, n1) = decode(&buf).expect("ok").expect("complete");
        assert_eq!(f1, Frame::Close { stream: 3 });
        let (f2, n2) = decode(&buf[n1..]).expect("ok").expect("complete");
        assert_eq!(f2, Frame::Credit { stream: 2, credit: 9 });
        assert_eq!(n1 + n2, buf.len());
    }

    /// Hostile input (docs/security.md): random bytes, random valid frames with garbage
    /// between them. decode() and read_frame() never panic, agree with each other, and a
    /// frame they accept re-encodes to exactly the bytes it came from.
    #[test]
    fn property_random_bytes_and_garbage_between_frames() {
        let mut r = crate::testrng::Rng::from_env(11);
        let n = crate::testrng::cases(20_000);
        for _ in 0..n {
            let mut buf = Vec::new();
            for _ in 0..r.below(4) {
                let f = match r.below(5) {
                    0 => Frame::Hello({ let n = r.below(64) as usize; r.bytes(n) }),
                    1 => Frame::Msg({ let n = r.below(64) as usize; r.bytes(n) }),
                    2 => Frame::Data { stream: 1 + r.below(u64::from(u32::MAX) - 1) as u32, data: { let n = 1 + r.below(300) as usize; r.bytes(n) } },
                    3 => Frame::Close { stream: 1 + r.below(1000) as u32 },
                    _ => Frame::Credit { stream: 1 + r.below(1000) as u32, credit: 1 + r.below(u64::from(u32::MAX) - 1) as u32 },
                };
                buf.extend(encode(&f).expect("valid frame encodes"));
            }
            let garbage_at = r.below(buf.len() as u64 + 1) as usize;
            let garbage = { let n = r.below(40) as usize; r.bytes(n) };
            buf.splice(garbage_at..garbage_at, garbage);
            let mut off = 0;
            let mut cur = std::io::Cursor::new(buf.clone());
            loop {
                let d = decode(&buf[off..]);
                let rf = read_frame(&mut cur);
                match d {
                    Ok(Some((f, used))) => {
                        assert_eq!(encode(&f).expect("re-encode"), buf[off..off + used].to_vec());
                        assert_eq!(rf.expect("read_frame agrees"), Some(f));
                        off += used;
                    }
                    Ok(None) => {
                        // incomplete: read_frame sees the end inside (or before) a frame
                        assert!(matches!(rf, Ok(None) | Err(FrameError::Truncated)), "{:?}", rf);
                        break;
                    }
                    Err(_) => {
                        assert!(rf.is_err() || off + HEADER_LEN > buf.len());
                        break;
                    }
                }
            }
        }
        eprintln!("frame property cases: {}", n);
    }

    #[test]
    fn property_giant_lengths_are_refused_from_four_bytes() {
        let mut r = crate::testrng::Rng::from_env(12);
        for _ in 0..crate::testrng::cases(5_000) {
            let len = (LEN_OVERHEAD + MAX_PAYLOAD + 1) as u64 + r.below(u64::from(u32::MAX) - (LEN_OVERHEAD + MAX_PAYLOAD) as u64);
            let b = (len as u32).to_be_bytes();
            assert!(matches!(decode(&b), Err(FrameError::LenTooLarge(_))));
            let mut whole = b.to_vec();
            whole.extend(r.bytes(5));
            // read_frame allocates nothing for the payload before refusing the header
            assert!(matches!(read_frame(&mut std::io::Cursor::new(whole)), Err(FrameError::LenTooLarge(_))));
        }
    }
}
