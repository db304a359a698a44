//! IVF, the container of `vpxenc`, `ffmpeg -f ivf` and WebCodecs tools for VP8, VP9 and AV1:
//! how `psp stream publish --file` sends a real encoded video, one encoded frame per stream
//! frame, at the file's frame rate.
//!
//! | field (little-endian) | bytes |
//! |---|---|
//! | `DKIF`, version 0, header length (≥ 32) | 4 + 2 + 2 |
//! | codec FourCC (`VP80`, `VP90`, `AV01`), width, height | 4 + 2 + 2 |
//! | time base: rate, scale (frames per second = rate / scale) | 4 + 4 |
//! | frame count, unused | 4 + 4 |
//! | then per frame: size, timestamp, the encoded frame | 4 + 8 + size |
//!
//! Parsing is strict: a frame larger than a stream frame may carry, a truncated frame or a
//! file without frames is refused with what is wrong.

use crate::Error;

/// The IVF signature.
const MAGIC: &[u8; 4] = b"DKIF";
/// Bytes of the file header.
const HEADER_LEN: usize = 32;
/// Bytes before each frame.
const FRAME_HEADER_LEN: usize = 12;

/// An IVF file's video: its codec, size, frame rate and encoded frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ivf {
    /// The codec's FourCC, e.g. `VP80`.
    pub fourcc: String,
    /// Picture width.
    pub width: u16,
    /// Picture height.
    pub height: u16,
    /// Frames per second, from the time base (1 ..= 1000).
    pub fps: u32,
    /// The encoded frames, in order.
    pub frames: Vec<Vec<u8>>,
}

/// Whether `data` starts like an IVF file.
pub fn is_ivf(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

impl Ivf {
    /// Parses an IVF file whose frames are at most `max_frame` bytes each.
    pub fn parse(data: &[u8], max_frame: usize) -> Result<Self, Error> {
        let bad = |reason: String| Error::InvalidInput {
            what: "IVF file",
            reason,
        };
        let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]);
        let u32_at =
            |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        if data.len() < HEADER_LEN || !is_ivf(data) {
            return Err(bad("no IVF header (DKIF, 32 bytes)".into()));
        }
        if u16_at(4) != 0 {
            return Err(bad(format!("version {} (0 is known)", u16_at(4))));
        }
        let header_len = usize::from(u16_at(6));
        if header_len < HEADER_LEN || header_len > data.len() {
            return Err(bad(format!("header length {header_len}")));
        }
        let fourcc = String::from_utf8_lossy(&data[8..12]).into_owned();
        let (rate, scale) = (u32_at(16), u32_at(20));
        if rate == 0 || scale == 0 {
            return Err(bad(format!("time base {rate}/{scale}")));
        }
        let fps = (rate / scale).clamp(1, 1000);
        let mut frames = Vec::new();
        let mut at = header_len;
        while at < data.len() {
            if data.len() - at < FRAME_HEADER_LEN {
                return Err(bad(format!("frame {} header truncated", frames.len())));
            }
            let size = u32_at(at) as usize;
            at += FRAME_HEADER_LEN;
            if size > max_frame {
                return Err(bad(format!(
                    "frame {} is {size} bytes (at most {max_frame} fit a stream frame)",
                    frames.len()
                )));
            }
            if data.len() - at < size {
                return Err(bad(format!("frame {} truncated", frames.len())));
            }
            frames.push(data[at..at + size].to_vec());
            at += size;
        }
        if frames.is_empty() {
            return Err(bad("no frames".into()));
        }
        Ok(Self {
            fourcc,
            width: u16_at(12),
            height: u16_at(14),
            fps,
            frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 clip WebCodecs encoded in headless Chromium (`tests/fixtures/README.md`).
    const CLIP: &[u8] = include_bytes!("../../../tests/fixtures/vp8-160x120-100f.ivf");

    #[test]
    fn the_fixture_clip_is_vp8_with_a_key_frame_first() {
        let ivf = Ivf::parse(CLIP, 65_000).expect("parses");
        assert_eq!(
            (ivf.fourcc.as_str(), ivf.width, ivf.height),
            ("VP80", 160, 120)
        );
        assert_eq!((ivf.fps, ivf.frames.len()), (25, 100));
        // VP8 frame tag: bit 0 clear on a key frame, then the start code 9d 01 2a.
        assert_eq!(ivf.frames[0][0] & 1, 0);
        assert_eq!(&ivf.frames[0][3..6], &[0x9d, 0x01, 0x2a]);
        assert!(ivf.frames[1][0] & 1 == 1, "then delta frames");
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        let cut = |n: usize| Ivf::parse(&CLIP[..n], 65_000).unwrap_err().to_string();
        assert!(cut(10).contains("no IVF header"));
        assert!(cut(32).contains("no frames"));
        assert!(cut(40).contains("header truncated"));
        assert!(cut(100).contains("frame 0 truncated"));
        let big = Ivf::parse(CLIP, 16).unwrap_err().to_string();
        assert!(big.contains("at most 16"), "{big}");
        let mut zero_rate = CLIP.to_vec();
        zero_rate[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert!(Ivf::parse(&zero_rate, 65_000).is_err());
        assert!(Ivf::parse(b"not an ivf file at all, not at all", 65_000).is_err());
    }
}
