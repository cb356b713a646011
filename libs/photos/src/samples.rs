//! Small images built byte by byte, with and without the metadata phones put
//! in them, for the tests of every crate that handles photos.

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What the metadata of the samples says: none of it may survive.
pub const SECRETS: [&str; 7] = [
    "Exif",
    "GPS",
    "iPhone",
    "ICC_PROFILE",
    "Dana Example",
    "xap",
    "Author",
];

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// A baseline JPEG's segments; with `metadata`, the EXIF (GPS position,
/// phone model), ICC profile, comment, XMP and trailer a phone adds.
pub fn jpeg(metadata: bool) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    j.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    if metadata {
        j.extend(segment(
            0xE1,
            b"Exif\0\0MM\0*GPSLatitude 40.7484 GPSLongitude -73.9857 Model iPhone 15",
        ));
        j.extend(segment(0xE2, b"ICC_PROFILE\0Apple Inc. Display P3"));
        j.extend(segment(0xFE, b"taken by Dana Example"));
    }
    j.extend(segment(0xDB, &[0u8; 65]));
    j.extend(segment(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
    j.extend(segment(0xC4, &[0u8; 20]));
    j.extend(segment(0xDA, &[1, 1, 0, 0, 0x3F, 0]));
    // entropy-coded data with a stuffed 0xFF and a restart marker
    j.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
    if metadata {
        // an XMP packet between the scan and the end
        j.extend(segment(0xE1, b"http://ns.adobe.com/xap/1.0/ Dana Example"));
    }
    j.extend_from_slice(&[0xFF, 0xD9]);
    if metadata {
        j.extend_from_slice(b"trailing owner: Dana Example");
    }
    j
}

fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = (body.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(body);
    c.extend_from_slice(&[0, 0, 0, 0]);
    c
}

/// A one-pixel PNG; with `metadata`, text, EXIF, time and ICC chunks.
pub fn png(metadata: bool) -> Vec<u8> {
    let mut p = PNG_SIGNATURE.to_vec();
    p.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
    if metadata {
        p.extend(chunk(b"tEXt", b"Author\0Dana Example"));
        p.extend(chunk(b"eXIf", b"MM\0*GPSLatitude 40.7484"));
        p.extend(chunk(b"iCCP", b"Display P3\0\0data"));
    }
    p.extend(chunk(b"pHYs", &[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1]));
    p.extend(chunk(b"IDAT", &[0x78, 0x9C, 0x63, 0, 0, 0, 0x01]));
    if metadata {
        p.extend(chunk(b"tIME", &[0x07, 0xEA, 11, 23, 4, 0, 0]));
    }
    p.extend(chunk(b"IEND", &[]));
    if metadata {
        p.extend_from_slice(b"appended: Dana Example");
    }
    p
}
