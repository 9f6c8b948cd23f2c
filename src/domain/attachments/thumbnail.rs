//! Small previews of images: at most [`EDGE`] pixels a side, aspect kept; JPEG, or PNG
//! when the image has transparency. Decoding is bounded (dimensions and memory), so a
//! crafted image cannot make the server allocate without limit.
use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits, codecs::jpeg::JpegEncoder};

/// The longest side of a thumbnail, in pixels.
pub const EDGE: u32 = 256;

/// The types a thumbnail can be made of.
pub const THUMBNAILED_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Largest image decoded, a side; and the memory its decoding may take.
const MAX_SIDE: u32 = 12_000;
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// A made thumbnail.
#[derive(Debug)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub mime_type: &'static str,
}

/// Makes the thumbnail of an image's bytes (CPU-bound: call off the async threads).
pub fn make(original: &[u8]) -> anyhow::Result<Thumbnail> {
    let mut reader = ImageReader::new(Cursor::new(original)).with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode()?;
    let small = if image.width() > EDGE || image.height() > EDGE {
        image.thumbnail(EDGE, EDGE)
    } else {
        image
    };
    encode(&small)
}

fn encode(image: &DynamicImage) -> anyhow::Result<Thumbnail> {
    let mut bytes = Vec::new();
    if image.color().has_alpha() {
        image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
        Ok(Thumbnail {
            bytes,
            mime_type: "image/png",
        })
    } else {
        JpegEncoder::new_with_quality(&mut bytes, 80).encode_image(&image.to_rgb8())?;
        Ok(Thumbnail {
            bytes,
            mime_type: "image/jpeg",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{RgbImage, RgbaImage};

    fn png_of(image: DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn a_photo_shrinks_to_a_jpeg_keeping_its_aspect() {
        let original = png_of(DynamicImage::ImageRgb8(RgbImage::new(600, 300)));
        let thumb = make(&original).unwrap();
        assert_eq!(thumb.mime_type, "image/jpeg");
        let decoded = image::load_from_memory(&thumb.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (EDGE, EDGE / 2));
    }

    #[test]
    fn transparency_stays_png_and_a_small_image_keeps_its_size() {
        let original = png_of(DynamicImage::ImageRgba8(RgbaImage::new(40, 30)));
        let thumb = make(&original).unwrap();
        assert_eq!(thumb.mime_type, "image/png");
        let decoded = image::load_from_memory(&thumb.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (40, 30));
    }

    #[test]
    fn a_truncated_image_is_an_error_not_a_panic() {
        let original = png_of(DynamicImage::ImageRgb8(RgbImage::new(50, 50)));
        assert!(make(&original[..original.len() / 2]).is_err());
    }
}
