//! The frame codec: 4 ASCII decimal digits giving the byte length of the encoded body, zero padded,
//! then the body in the session's charset (MS949 by default, UTF-8 as an option).
//!
//! `0014Hello 모종닷컴` is the classic example: "Hello 모종닷컴" is 14 bytes in MS949 (18 in UTF-8),
//! and the prefix counts bytes, not characters.

use std::fmt;

use bytes::BytesMut;
use rust_i18n::t;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::Localized;
use crate::i18n::{Lang, Said};

/// Largest body a 4-digit prefix can describe.
pub const MAX_BODY: usize = 9999;
/// Width of the decimal length prefix.
pub const PREFIX_LEN: usize = 4;
/// The message the classic ClientMain sends.
pub const DEFAULT_MESSAGE: &str = "Hello 모종닷컴";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charset {
    /// Korean code page 949 (EUC-KR superset), as the classic Kotlin lab used.
    #[default]
    #[serde(alias = "cp949", alias = "euc-kr")]
    Ms949,
    #[serde(alias = "utf8")]
    Utf8,
}

/// `ms949` (or `cp949`, `euc-kr`) and `utf-8` (or `utf8`), any case: what scenarios and
/// recordings write (a recording's header says `MS949`).
impl std::str::FromStr for Charset {
    type Err = crate::model::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ms949" | "cp949" | "euc-kr" => Ok(Charset::Ms949),
            "utf-8" | "utf8" => Ok(Charset::Utf8),
            _ => Err(crate::model::UnknownName::new("charset", s, "ms949, utf-8")),
        }
    }
}

impl Charset {
    /// encoding_rs's EUC_KR is the WHATWG "EUC-KR", which is Microsoft's code page 949 (the label "cp949" is unknown).
    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Charset::Ms949 => encoding_rs::EUC_KR,
            Charset::Utf8 => encoding_rs::UTF_8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Charset::Ms949 => "MS949",
            Charset::Utf8 => "UTF-8",
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong with a frame, each with a message a student can act on.
/// `Display` is the English (as JSON keeps it); [`Localized::in_lang`] says it in any language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum FrameError {
    BadPrefix {
        hex: String,
        text: String,
    },
    TooLong {
        len: usize,
        charset: Charset,
    },
    Unmappable {
        ch: char,
        code: u32,
        charset: Charset,
    },
    ClosedBetweenFrames,
    ClosedInsideFrame {
        got: usize,
        expected: usize,
        part: FramePart,
    },
    ResetInsideFrame {
        got: usize,
        expected: usize,
        part: FramePart,
    },
    FrameTimeout {
        got: usize,
        expected: usize,
        part: FramePart,
        after: std::time::Duration,
    },
    /// The OS's error, in each language.
    Io(Said),
}

/// Charset names, byte values and flags stay as they are in every language.
impl Localized for FrameError {
    fn in_lang(&self, lang: Lang) -> String {
        let l = lang.code();
        match self {
            FrameError::BadPrefix { hex, text } => t!(
                "frame.bad_prefix",
                locale = l,
                hex = hex,
                text = crate::model::quoted(text)
            ),
            FrameError::TooLong { len, charset } => {
                t!("frame.too_long", locale = l, len = len, charset = charset)
            }
            FrameError::Unmappable { ch, code, charset } => t!(
                "frame.unmappable",
                locale = l,
                charset = charset,
                ch = format!("{ch:?}"),
                code = format!("{code:04X}")
            ),
            FrameError::ClosedBetweenFrames => t!("frame.closed_between", locale = l),
            FrameError::ClosedInsideFrame {
                got,
                expected,
                part,
            } => t!(
                "frame.closed_inside",
                locale = l,
                got = got,
                expected = expected,
                part = part.in_lang(lang)
            ),
            FrameError::ResetInsideFrame {
                got,
                expected,
                part,
            } => t!(
                "frame.reset_inside",
                locale = l,
                got = got,
                expected = expected,
                part = part.in_lang(lang)
            ),
            FrameError::FrameTimeout {
                got,
                expected,
                part,
                after,
            } => t!(
                "frame.timeout",
                locale = l,
                secs = after.as_secs_f64(),
                got = got,
                expected = expected,
                part = part.in_lang(lang)
            ),
            FrameError::Io(e) => t!("frame.io", locale = l, error = e.in_lang(lang)),
        }
        .into_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    Prefix,
    Body,
}

impl FramePart {
    /// Where in the frame, in `lang`'s words.
    pub fn in_lang(self, lang: Lang) -> String {
        let key = match self {
            FramePart::Prefix => "frame.in_prefix",
            FramePart::Body => "frame.in_body",
        };
        t!(key, locale = lang.code()).into_owned()
    }
}

impl fmt::Display for FramePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.in_lang(Lang::En))
    }
}

/// A received frame: the exact bytes that came off the wire and their decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Prefix and body exactly as received.
    pub raw: Vec<u8>,
    /// Decoded body; bytes that do not decode are shown as U+FFFD.
    pub text: String,
    /// Set when some body bytes did not decode in the charset.
    pub malformed: bool,
    /// The frame's whole length; more than `raw.len()` once cut for display ([`Frame::shown`]).
    pub len: usize,
}

/// Body bytes a timeline keeps of a frame for display; the full length is still reported.
pub const SHOWN_BODY: usize = 256;

/// The first [`SHOWN_BODY`] bytes of a frame and of its text, `…` marking a cut.
pub fn shown(raw: &[u8], text: &str) -> (Vec<u8>, String) {
    let keep = PREFIX_LEN + SHOWN_BODY;
    if raw.len() <= keep {
        return (raw.to_vec(), text.to_string());
    }
    let mut t: String = text.chars().take(SHOWN_BODY).collect();
    t.push('…');
    (raw[..keep].to_vec(), t)
}

impl Frame {
    /// This frame cut for display (what a timeline holds): bounded whatever the peer sent.
    pub fn shown(self) -> Frame {
        let (raw, text) = shown(&self.raw, &self.text);
        Frame {
            raw,
            text,
            malformed: self.malformed,
            len: self.len,
        }
    }

    /// Whether display cut this frame short.
    pub fn is_cut(&self) -> bool {
        self.raw.len() < self.len
    }

    pub fn body(&self) -> &[u8] {
        &self.raw[PREFIX_LEN..]
    }

    /// A note for a body that did not decode cleanly, naming the raw bytes, in `lang`'s words.
    pub fn decode_warning(&self, charset: Charset, lang: Lang) -> Option<String> {
        self.malformed.then(|| {
            t!(
                "frame.malformed",
                locale = lang.code(),
                charset = charset,
                hex = hex(self.body())
            )
            .into_owned()
        })
    }
}

/// Encodes `text` as one frame (prefix + body), refusing what the charset cannot carry.
pub fn encode_frame(text: &str, charset: Charset) -> Result<Vec<u8>, FrameError> {
    let body = encode_body(text, charset)?;
    Ok(frame_bytes(&body))
}

/// Encodes the body only. encoding_rs silently writes `&#NNNN;` for unmappable characters: refuse instead.
/// Bytes `text` takes in `charset` (a character the charset lacks counts as what the encoder
/// writes for it, `&#NNNN;`: [`encode_body`] refuses such a text).
pub fn encoded_len(text: &str, charset: Charset) -> usize {
    charset.encoding().encode(text).0.len()
}

pub fn encode_body(text: &str, charset: Charset) -> Result<Vec<u8>, FrameError> {
    let (bytes, _, had_errors) = charset.encoding().encode(text);
    if had_errors {
        let enc = charset.encoding();
        let bad = text
            .chars()
            .find(|c| enc.encode(c.encode_utf8(&mut [0; 4])).2)
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        return Err(FrameError::Unmappable {
            ch: bad,
            code: bad as u32,
            charset,
        });
    }
    if bytes.len() > MAX_BODY {
        return Err(FrameError::TooLong {
            len: bytes.len(),
            charset,
        });
    }
    Ok(bytes.into_owned())
}

/// Prefixes an already-encoded body. The caller guarantees `body.len() <= MAX_BODY`.
pub fn frame_bytes(body: &[u8]) -> Vec<u8> {
    debug_assert!(body.len() <= MAX_BODY);
    let mut out = format!("{:04}", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Decodes a body, replacing what does not decode.
pub fn decode_body(body: &[u8], charset: Charset) -> (String, bool) {
    let (text, had_errors) = charset.encoding().decode_without_bom_handling(body);
    (text.into_owned(), had_errors)
}

fn parse_prefix(prefix: &[u8], charset: Charset) -> Result<usize, FrameError> {
    if prefix.len() == PREFIX_LEN && prefix.iter().all(u8::is_ascii_digit) {
        Ok(prefix
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
    } else {
        Err(FrameError::BadPrefix {
            hex: hex(prefix),
            // The bytes as the session's charset reads them: often a body mistaken for a prefix.
            text: decode_body(prefix, charset).0,
        })
    }
}

/// Lower-case hex bytes separated by spaces, as Wireshark shows them.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Incremental decoder over a byte buffer: cancellation safe, so a task can `select!` between reading
/// the socket into the buffer and taking commands. Frames split over many segments, or many frames in
/// one segment, both come out whole.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    pub charset: Charset,
}

impl FrameDecoder {
    pub fn new(charset: Charset) -> Self {
        Self { charset }
    }

    /// Takes one whole frame off the front of `buf`, if there is one.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < PREFIX_LEN {
            // A prefix that is already wrong is reported at once, not after 4 bytes.
            parse_prefix_partial(buf, self.charset)?;
            return Ok(None);
        }
        let len = parse_prefix(&buf[..PREFIX_LEN], self.charset)?;
        if buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        let raw = buf.split_to(PREFIX_LEN + len).to_vec();
        let (text, malformed) = decode_body(&raw[PREFIX_LEN..], self.charset);
        Ok(Some(Frame {
            len: raw.len(),
            raw,
            text,
            malformed,
        }))
    }

    /// How much of an unfinished frame `buf` holds: (got, expected, part); None between frames.
    pub fn partial(&self, buf: &BytesMut) -> Result<Option<(usize, usize, FramePart)>, FrameError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if buf.len() < PREFIX_LEN {
            return Ok(Some((buf.len(), PREFIX_LEN, FramePart::Prefix)));
        }
        let len = parse_prefix(&buf[..PREFIX_LEN], self.charset)?;
        Ok(Some((buf.len() - PREFIX_LEN, len, FramePart::Body)))
    }

    /// What the end of the stream means given what is left in `buf`.
    pub fn at_eof(&self, buf: &BytesMut) -> FrameError {
        match self.partial(buf) {
            Ok(None) => FrameError::ClosedBetweenFrames,
            Ok(Some((got, expected, part))) => FrameError::ClosedInsideFrame {
                got,
                expected,
                part,
            },
            Err(e) => e,
        }
    }
}

/// Reads one frame with read-exact semantics (4 bytes, then n): a single `read` may return less.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    charset: Charset,
) -> Result<Frame, FrameError> {
    let mut prefix = [0u8; PREFIX_LEN];
    let got = read_full(reader, &mut prefix).await?;
    if got == 0 {
        return Err(FrameError::ClosedBetweenFrames);
    }
    if got < PREFIX_LEN {
        // Say what was wrong with the bytes we did get before blaming the close.
        parse_prefix_partial(&prefix[..got], charset)?;
        return Err(FrameError::ClosedInsideFrame {
            got,
            expected: PREFIX_LEN,
            part: FramePart::Prefix,
        });
    }
    let len = parse_prefix(&prefix, charset)?;
    let mut raw = prefix.to_vec();
    raw.resize(PREFIX_LEN + len, 0);
    let got = read_full(reader, &mut raw[PREFIX_LEN..]).await?;
    if got < len {
        return Err(FrameError::ClosedInsideFrame {
            got,
            expected: len,
            part: FramePart::Body,
        });
    }
    let (text, malformed) = decode_body(&raw[PREFIX_LEN..], charset);
    Ok(Frame {
        len: raw.len(),
        raw,
        text,
        malformed,
    })
}

fn parse_prefix_partial(bytes: &[u8], charset: Charset) -> Result<(), FrameError> {
    if bytes.iter().all(u8::is_ascii_digit) {
        Ok(())
    } else {
        parse_prefix(bytes, charset).map(|_| ())
    }
}

/// Like `read_exact`, but reports how many bytes came before EOF instead of failing.
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => {
                return Err(FrameError::Io(Said::each(|l| {
                    crate::os_error::os_error_in(&e, l)
                })));
            }
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_MS949: [u8; 14] = [
        0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0xb8, 0xf0, 0xc1, 0xbe, 0xb4, 0xe5, 0xc4, 0xc4,
    ];

    #[test]
    fn hello_is_14_bytes_in_ms949_and_18_in_utf8() {
        let f = encode_frame(DEFAULT_MESSAGE, Charset::Ms949).unwrap();
        assert_eq!(&f[..4], b"0014");
        assert_eq!(&f[4..], &HELLO_MS949);
        let u = encode_frame(DEFAULT_MESSAGE, Charset::Utf8).unwrap();
        assert_eq!(&u[..4], b"0018");
    }

    #[test]
    fn bad_prefix_text_is_read_in_the_session_charset() {
        // "모종" in MS949 where a prefix should be: a body mistaken for a length.
        let mut buf = BytesMut::from(&[0xb8, 0xf0, 0xc1, 0xbe, b'x'][..]);
        let err = FrameDecoder::new(Charset::Ms949)
            .decode(&mut buf)
            .unwrap_err();
        assert_eq!(
            err,
            FrameError::BadPrefix {
                hex: "b8 f0 c1 be".into(),
                text: "모종".into()
            }
        );
    }

    #[test]
    fn display_keeps_a_bounded_head_and_the_full_length() {
        let text = "가".repeat(4000);
        let raw = encode_frame(&text, Charset::Ms949).unwrap();
        let f = FrameDecoder::new(Charset::Ms949)
            .decode(&mut BytesMut::from(&raw[..]))
            .unwrap()
            .unwrap()
            .shown();
        assert_eq!((f.raw.len(), f.len), (PREFIX_LEN + SHOWN_BODY, 8004));
        assert!(f.is_cut() && f.text.ends_with('…'));
        assert_eq!(f.text.chars().count(), SHOWN_BODY + 1);
    }

    #[test]
    fn bad_prefix_shows_hex_and_text() {
        let mut buf = BytesMut::from(&b"00a4xxxx"[..]);
        let err = FrameDecoder::new(Charset::Ms949)
            .decode(&mut buf)
            .unwrap_err();
        assert_eq!(
            err,
            FrameError::BadPrefix {
                hex: "30 30 61 34".into(),
                text: "00a4".into()
            }
        );
        assert!(err.to_string().contains("30 30 61 34"));
        // Reported as soon as a non-digit arrives, before 4 bytes.
        let mut early = BytesMut::from(&b"G"[..]);
        assert!(matches!(
            FrameDecoder::new(Charset::Ms949).decode(&mut early),
            Err(FrameError::BadPrefix { .. })
        ));
    }

    #[test]
    fn too_long_says_how_long() {
        let err = encode_frame(&"가".repeat(5000), Charset::Ms949).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLong {
                len: 10000,
                charset: Charset::Ms949
            }
        );
        assert!(err.to_string().contains("10000 bytes"));
        assert!(encode_frame(&"a".repeat(9999), Charset::Utf8).is_ok());
    }

    #[test]
    fn unmappable_character_is_refused_and_named() {
        let err = encode_frame("Hello 🙂", Charset::Ms949).unwrap_err();
        assert_eq!(
            err,
            FrameError::Unmappable {
                ch: '🙂',
                code: 0x1F642,
                charset: Charset::Ms949
            }
        );
        assert!(err.to_string().contains("U+1F642"));
        assert!(encode_frame("Hello 🙂", Charset::Utf8).is_ok());
    }

    #[test]
    fn errors_in_korean_keep_bytes_and_names() {
        let ko = |e: &FrameError| e.in_lang(Lang::Ko);
        let err = encode_frame("Hello 🙂", Charset::Ms949).unwrap_err();
        assert_eq!(
            ko(&err),
            "MS949로는 문자 '🙂' (U+1F642)를 나타낼 수 없음; 메시지를 보내지 않고 거부함"
        );
        let timeout = FrameError::FrameTimeout {
            got: 2,
            expected: 4,
            part: FramePart::Prefix,
            after: std::time::Duration::from_secs(5),
        };
        assert_eq!(
            timeout.to_string(),
            "a frame did not finish within 5s: 2 of 4 bytes arrived (in the 4-byte length \
             prefix); closing the connection (--frame-timeout)"
        );
        assert_eq!(
            ko(&timeout),
            "프레임이 5초 안에 끝나지 않음: 4바이트 중 2바이트만 도착 (4바이트 길이 접두사에서); \
             연결을 닫음 (--frame-timeout)"
        );
        let io = FrameError::Io(Said::with(
            "Connection reset by peer (os error 104)",
            Lang::Ko,
            "상대가 연결을 리셋했습니다 (ECONNRESET)",
        ));
        assert_eq!(
            ko(&io),
            "입출력 오류: 상대가 연결을 리셋했습니다 (ECONNRESET)"
        );
        assert_eq!(
            io.to_string(),
            "i/o error: Connection reset by peer (os error 104)"
        );
    }

    #[test]
    fn eof_between_and_inside_frames() {
        let d = FrameDecoder::new(Charset::Ms949);
        assert_eq!(d.at_eof(&BytesMut::new()), FrameError::ClosedBetweenFrames);
        assert_eq!(
            d.at_eof(&BytesMut::from(&b"00"[..])),
            FrameError::ClosedInsideFrame {
                got: 2,
                expected: 4,
                part: FramePart::Prefix
            }
        );
        let e = d.at_eof(&BytesMut::from(&b"9999abc"[..]));
        assert_eq!(
            e,
            FrameError::ClosedInsideFrame {
                got: 3,
                expected: 9999,
                part: FramePart::Body
            }
        );
        assert!(e.to_string().contains("3 of 9999 bytes"));
    }

    #[test]
    fn malformed_body_is_delivered_with_replacement_and_hex() {
        let mut buf = BytesMut::from(&b"0002\xff\xfe"[..]);
        let f = FrameDecoder::new(Charset::Utf8)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert!(f.malformed);
        assert!(f.text.contains('\u{FFFD}'));
        assert!(
            f.decode_warning(Charset::Utf8, Lang::En)
                .unwrap()
                .contains("ff fe")
        );
    }

    #[test]
    fn two_frames_in_one_buffer_and_split_frames() {
        let d = FrameDecoder::new(Charset::Ms949);
        let mut both = encode_frame("a", Charset::Ms949).unwrap();
        both.extend(encode_frame(DEFAULT_MESSAGE, Charset::Ms949).unwrap());
        let mut buf = BytesMut::new();
        let mut out = vec![];
        for b in both {
            buf.extend_from_slice(&[b]);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                out.push(f.text);
            }
        }
        assert_eq!(out, vec!["a".to_string(), DEFAULT_MESSAGE.to_string()]);
    }

    #[tokio::test]
    async fn read_frame_reads_exactly() {
        let mut data: &[u8] = b"0014Hello \xb8\xf0\xc1\xbe\xb4\xe5\xc4\xc40001x";
        let f = read_frame(&mut data, Charset::Ms949).await.unwrap();
        assert_eq!(f.text, DEFAULT_MESSAGE);
        let g = read_frame(&mut data, Charset::Ms949).await.unwrap();
        assert_eq!(g.text, "x");
        assert_eq!(
            read_frame(&mut data, Charset::Ms949).await.unwrap_err(),
            FrameError::ClosedBetweenFrames
        );
        let mut short: &[u8] = b"9999abc";
        assert_eq!(
            read_frame(&mut short, Charset::Ms949).await.unwrap_err(),
            FrameError::ClosedInsideFrame {
                got: 3,
                expected: 9999,
                part: FramePart::Body
            }
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn utf8_round_trip(s in ".{0,300}") {
                let frame = encode_frame(&s, Charset::Utf8).unwrap();
                let mut buf = BytesMut::from(&frame[..]);
                let f = FrameDecoder::new(Charset::Utf8).decode(&mut buf).unwrap().unwrap();
                prop_assert_eq!(f.text, s);
                prop_assert!(buf.is_empty());
            }

            #[test]
            fn ms949_round_trip_for_what_it_can_encode(s in "[a-zA-Z0-9 가-힣ㄱ-ㅎ.,!?]{0,300}") {
                match encode_frame(&s, Charset::Ms949) {
                    Ok(frame) => {
                        let mut buf = BytesMut::from(&frame[..]);
                        let f = FrameDecoder::new(Charset::Ms949).decode(&mut buf).unwrap().unwrap();
                        prop_assert_eq!(f.text, s);
                    }
                    // Modern Hangul syllables outside KS X 1001 are still encodable in CP949; anything refused must be named.
                    Err(FrameError::Unmappable { .. }) | Err(FrameError::TooLong { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }

            #[test]
            fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000),
                                    cuts in proptest::collection::vec(1usize..64, 1..40)) {
                for charset in [Charset::Ms949, Charset::Utf8] {
                    let d = FrameDecoder::new(charset);
                    let mut buf = BytesMut::new();
                    let mut rest = &data[..];
                    let mut i = 0;
                    'feed: while !rest.is_empty() {
                        let n = cuts[i % cuts.len()].min(rest.len());
                        i += 1;
                        buf.extend_from_slice(&rest[..n]);
                        rest = &rest[n..];
                        loop {
                            match d.decode(&mut buf) {
                                Ok(Some(_)) => continue,
                                Ok(None) => break,
                                Err(_) => break 'feed,
                            }
                        }
                    }
                    let _ = d.at_eof(&buf);
                }
            }
        }
    }
}
