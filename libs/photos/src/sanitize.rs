//! Deciding what a photo is from its bytes, and taking out everything that
//! is not the picture. The picture itself is copied bit for bit (no
//! re-encoding, no quality loss); what goes:
//!
//! - JPEG: every APPn segment (EXIF with GPS position, camera and phone
//!   model, XMP, ICC profiles, maker notes, Photoshop data) except the JFIF
//!   header and Adobe's colour-transform marker, every comment, and anything
//!   after the end-of-image marker;
//! - PNG: every chunk but the ones that draw the picture (text, EXIF, time,
//!   ICC profile, unknown and private chunks), and anything after IEND.

/// The largest photo accepted, in bytes.
pub const MAX_PHOTO_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("the photo is empty")]
    Empty,
    #[error("the photo is {0} bytes; at most 5 MiB (5,242,880 bytes) is accepted")]
    TooLarge(usize),
    #[error("the content is neither a JPEG nor a PNG image (decided from the bytes, not the name)")]
    NotAnImage,
    #[error("the {kind} image is malformed: {reason}")]
    Malformed {
        kind: &'static str,
        reason: &'static str,
    },
}

/// A photo with its metadata taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    /// `image/jpeg` or `image/png`, from the bytes.
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Sniffs `bytes` and returns the picture without its metadata.
pub fn sanitize(bytes: &[u8]) -> Result<Sanitized, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(PhotoError::TooLarge(bytes.len()));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Sanitized {
            content_type: "image/jpeg",
            bytes: strip_jpeg(bytes)?,
        });
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        return Ok(Sanitized {
            content_type: "image/png",
            bytes: strip_png(bytes)?,
        });
    }
    Err(PhotoError::NotAnImage)
}

fn jpeg_error(reason: &'static str) -> PhotoError {
    PhotoError::Malformed {
        kind: "JPEG",
        reason,
    }
}

/// Whether a JPEG segment is picture data to keep.
fn keep_jpeg_segment(marker: u8, body: &[u8]) -> bool {
    match marker {
        // APP0: only the plain JFIF header (no JFXX thumbnails or extensions)
        0xE0 => body.starts_with(b"JFIF\0"),
        // APP14 "Adobe": the colour transform CMYK pictures need; no personal data
        0xEE => body.starts_with(b"Adobe"),
        // every other APPn (EXIF, XMP, ICC, maker notes…) and comments
        0xE1..=0xEF | 0xFE => false,
        _ => true,
    }
}

fn strip_jpeg(data: &[u8]) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut i = 2;
    let (mut frame, mut scan) = (false, false);
    loop {
        if i >= data.len() {
            return Err(jpeg_error("it ends before its end-of-image marker"));
        }
        if data[i] != 0xFF {
            return Err(jpeg_error("a segment does not start with a marker"));
        }
        // fill bytes before a marker
        while i < data.len() && data[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = data.get(i) else {
            return Err(jpeg_error("it ends inside a marker"));
        };
        i += 1;
        match marker {
            0xD9 => {
                if !(frame && scan) {
                    return Err(jpeg_error("it has no frame or no scan"));
                }
                out.extend_from_slice(&[0xFF, 0xD9]);
                // whatever follows the end of the image is dropped
                return Ok(out);
            }
            0xD0..=0xD7 | 0x01 => out.extend_from_slice(&[0xFF, marker]),
            0x00 | 0xD8 => return Err(jpeg_error("an unexpected marker")),
            _ => {
                let length = data
                    .get(i..i + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or_else(|| jpeg_error("it ends inside a segment length"))?;
                if length < 2 || i + length > data.len() {
                    return Err(jpeg_error("a segment is longer than the file"));
                }
                let segment = &data[i..i + length];
                i += length;
                if keep_jpeg_segment(marker, &segment[2..]) {
                    out.extend_from_slice(&[0xFF, marker]);
                    out.extend_from_slice(segment);
                }
                // start of frame: C0-CF but DHT (C4), JPG (C8) and DAC (CC)
                if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                    frame = true;
                }
                if marker == 0xDA {
                    if !frame {
                        return Err(jpeg_error("a scan comes before the frame header"));
                    }
                    scan = true;
                    // entropy-coded data runs to the next marker that is not a
                    // stuffed 0xFF00 or a restart marker
                    let start = i;
                    while i < data.len() {
                        if data[i] == 0xFF
                            && let Some(&next) = data.get(i + 1)
                            && next != 0x00
                            && !(0xD0..=0xD7).contains(&next)
                        {
                            break;
                        }
                        i += 1;
                    }
                    out.extend_from_slice(&data[start..i]);
                }
            }
        }
    }
}

fn png_error(reason: &'static str) -> PhotoError {
    PhotoError::Malformed {
        kind: "PNG",
        reason,
    }
}

/// The chunks that draw the picture; everything else goes.
const PNG_PICTURE_CHUNKS: [&[u8; 4]; 12] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD",
    b"pHYs", b"hIST",
];

fn strip_png(data: &[u8]) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut i = PNG_SIGNATURE.len();
    let mut first = true;
    let mut pixels = false;
    loop {
        let header = data
            .get(i..i + 8)
            .ok_or_else(|| png_error("it ends before its IEND chunk"))?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let end = i
            .checked_add(12)
            .and_then(|n| n.checked_add(length))
            .filter(|end| *end <= data.len())
            .ok_or_else(|| png_error("a chunk is longer than the file"))?;
        if first && &kind != b"IHDR" {
            return Err(png_error("it does not start with IHDR"));
        }
        first = false;
        if &kind == b"IDAT" {
            pixels = true;
        }
        if PNG_PICTURE_CHUNKS.contains(&&kind) {
            out.extend_from_slice(&data[i..end]);
        }
        i = end;
        if &kind == b"IEND" {
            if !pixels {
                return Err(png_error("it has no image data"));
            }
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{SECRETS, jpeg, png};

    #[test]
    fn a_jpeg_loses_exif_gps_icc_comments_and_trailers_and_keeps_its_picture() {
        let clean = sanitize(&jpeg(true)).unwrap();
        assert_eq!(clean.content_type, "image/jpeg");
        assert_eq!(
            clean.bytes,
            jpeg(false),
            "exactly the picture segments remain"
        );
        let text = String::from_utf8_lossy(&clean.bytes);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} left in the photo");
        }
        // a clean photo goes through unchanged
        assert_eq!(sanitize(&jpeg(false)).unwrap().bytes, jpeg(false));
    }

    #[test]
    fn a_png_keeps_only_the_chunks_that_draw_it() {
        let clean = sanitize(&png(true)).unwrap();
        assert_eq!(clean.content_type, "image/png");
        assert_eq!(clean.bytes, png(false));
    }

    #[test]
    fn the_type_comes_from_the_bytes_and_bad_content_is_refused_with_a_reason() {
        assert_eq!(sanitize(b""), Err(PhotoError::Empty));
        assert_eq!(sanitize(b"GIF89a\x01\0\x01\0"), Err(PhotoError::NotAnImage));
        assert_eq!(
            sanitize(b"<html>photo.jpg</html>"),
            Err(PhotoError::NotAnImage)
        );
        let big = vec![0xFF; MAX_PHOTO_BYTES + 1];
        assert_eq!(
            sanitize(&big),
            Err(PhotoError::TooLarge(MAX_PHOTO_BYTES + 1))
        );

        // truncated, or a length running past the end
        let whole = jpeg(false);
        assert!(matches!(
            sanitize(&whole[..whole.len() - 2]),
            Err(PhotoError::Malformed { kind: "JPEG", .. })
        ));
        let mut liar = vec![0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF];
        liar.extend_from_slice(b"Exif");
        assert!(matches!(
            sanitize(&liar),
            Err(PhotoError::Malformed { kind: "JPEG", .. })
        ));
        // no picture in it at all
        let empty = [0xFF, 0xD8, 0xFF, 0xD9];
        assert!(sanitize(&empty).is_err());
        let whole = png(false);
        assert!(matches!(
            sanitize(&whole[..whole.len() - 12]),
            Err(PhotoError::Malformed { kind: "PNG", .. })
        ));
    }
}
