//! A real photo a browser can show: a small PNG of a street with a red car
//! in front of a yellow hydrant, encoded here (stored deflate blocks, real
//! checksums) so a test attaches a picture that decodes, not just bytes
//! that look like one (`dispatch311_photos::samples` are made for the
//! metadata stripper and do not decode).

const WIDTH: u32 = 160;
const HEIGHT: u32 = 120;

/// The photo, as a phone's app would upload it.
pub fn street_png() -> Vec<u8> {
    let mut raw = Vec::with_capacity(((WIDTH * 3 + 1) * HEIGHT) as usize);
    for y in 0..HEIGHT {
        raw.push(0); // filter: none
        for x in 0..WIDTH {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&WIDTH.to_be_bytes());
    header.extend_from_slice(&HEIGHT.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn pixel(x: u32, y: u32) -> [u8; 3] {
    let in_box = |x0, y0, x1, y1| (x0..x1).contains(&x) && (y0..y1).contains(&y);
    if in_box(30, 60, 110, 90) || in_box(45, 45, 95, 60) {
        [200, 30, 30] // the car
    } else if in_box(120, 62, 132, 92) {
        [240, 200, 0] // the hydrant
    } else if y < 40 {
        [150, 190, 230] // sky
    } else if y < 95 {
        [120, 120, 120] // street
    } else {
        [190, 190, 180] // sidewalk
    }
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    png.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(body);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// zlib with uncompressed ("stored") deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (n, block) in blocks.iter().enumerate() {
        out.push(u8::from(n + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksums_are_the_standard_ones() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn the_photo_is_a_png_of_its_size() {
        let png = street_png();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[16..24], &[0, 0, 0, 160, 0, 0, 0, 120]);
        assert!(png.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
    }
}
