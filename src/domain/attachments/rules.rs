//! What an upload may be: its name, its idempotency key, and its type, which is read
//! from the bytes themselves, never from the file name or the declared Content-Type.
use crate::domain::{DomainError, DomainResult};

/// Bytes of the start of an upload that type sniffing and image probing read.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// Longest file name kept, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Longest `Idempotency-Key`.
pub const MAX_KEY_BYTES: usize = 255;

/// The types accepted, as `infer` names them: images, PDF, common audio and video.
/// Anything else (HTML, scripts, executables, archives, unknown bytes) is refused: a
/// download is served with the sniffed type, and these cannot run in a browser.
pub const ALLOWED_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heif",
    "application/pdf",
    "audio/mpeg",
    "audio/ogg",
    "audio/x-wav",
    "audio/x-flac",
    "audio/m4a",
    "audio/aac",
    "video/mp4",
    "video/webm",
    "video/quicktime",
];

/// A file name as shown to members: the last path segment, trimmed, control characters
/// replaced, at most [`MAX_NAME_BYTES`]. A name is only shown, never used as a path, so
/// it is tidied rather than refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentName(String);

impl AttachmentName {
    /// The client's name made presentable; None if nothing of it is left.
    pub fn tidy(raw: &str) -> Option<Self> {
        // Browsers and curl may send a whole path; only the file's own name is kept.
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let mut name = String::with_capacity(last.len().min(MAX_NAME_BYTES));
        for c in last.trim().chars().map(|c| if c.is_control() { '_' } else { c }) {
            if name.len() + c.len_utf8() > MAX_NAME_BYTES {
                break;
            }
            name.push(c);
        }
        let name = name.trim();
        (!name.is_empty() && name != "." && name != "..").then(|| AttachmentName(name.to_owned()))
    }

    /// The name of an upload that came without one: `attachment.<extension of its type>`.
    pub fn fallback(mime_type: &str) -> Self {
        let extension = mime_type.rsplit(['/', '-']).next().unwrap_or("bin");
        AttachmentName(format!("attachment.{extension}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> DomainResult<Self> {
        if raw.is_empty() || raw.len() > MAX_KEY_BYTES || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::InvalidInput(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_BYTES} visible ASCII characters"
            )));
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub mime_type: &'static str,
    /// Width and height, for images whose header says.
    pub dimensions: Option<(u32, u32)>,
}

/// Reads the type from the start of the content; refuses what is not allowed.
pub fn sniff(head: &[u8]) -> DomainResult<Sniffed> {
    let kind = infer::get(head);
    let mime_type = kind
        .map(|k| k.mime_type())
        .filter(|m| ALLOWED_TYPES.contains(m))
        .ok_or_else(|| {
            DomainError::UnsupportedAttachmentType(match kind {
                Some(k) => format!("attachments of type {} are not accepted", k.mime_type()),
                None => "the attachment's type could not be recognised from its content".into(),
            })
        })?;
    let dimensions = mime_type
        .starts_with("image/")
        .then(|| imagesize::blob_size(head).ok())
        .flatten()
        .and_then(|size| Some((u32::try_from(size.width).ok()?, u32::try_from(size.height).ok()?)));
    Ok(Sniffed {
        mime_type,
        dimensions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 PNG's signature and IHDR chunk.
    pub(crate) fn png_head() -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&3u32.to_be_bytes());
        png.extend_from_slice(&2u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        png
    }

    #[test]
    fn an_image_is_recognised_with_its_size() {
        assert_eq!(
            sniff(&png_head()).unwrap(),
            Sniffed {
                mime_type: "image/png",
                dimensions: Some((3, 2))
            }
        );
        assert_eq!(sniff(b"%PDF-1.7\n").unwrap().mime_type, "application/pdf");
    }

    #[test]
    fn html_executables_and_unknown_bytes_are_refused() {
        for bytes in [
            &b"<!DOCTYPE html><html><script>alert(1)</script></html>"[..],
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0",
            b"MZ\x90\0\x03\0\0\0",
            b"just some text",
            b"",
        ] {
            assert!(
                matches!(sniff(bytes), Err(DomainError::UnsupportedAttachmentType(_))),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn a_name_keeps_its_last_segment_without_control_characters() {
        let tidy = |raw: &str| AttachmentName::tidy(raw).map(|n| n.as_str().to_owned());
        assert_eq!(tidy("C:\\tmp\\a b.png").as_deref(), Some("a b.png"));
        assert_eq!(tidy("../../etc/x.pdf ").as_deref(), Some("x.pdf"));
        assert_eq!(tidy("a\nb.png").as_deref(), Some("a_b.png"));
        assert_eq!(tidy("dir/"), None);
        assert_eq!(tidy(".."), None);
        assert_eq!(
            tidy(&"é".repeat(MAX_NAME_BYTES)).map(|n| n.len()),
            Some(MAX_NAME_BYTES - 1)
        );
        assert_eq!(AttachmentName::fallback("image/png").as_str(), "attachment.png");
        assert_eq!(AttachmentName::fallback("audio/x-wav").as_str(), "attachment.wav");
    }

    #[test]
    fn an_idempotency_key_is_visible_ascii() {
        assert!(IdempotencyKey::parse("upload-1_ABC").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse("é").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
    }
}
