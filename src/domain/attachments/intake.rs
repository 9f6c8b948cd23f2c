//! Receiving an upload's bytes: type-checked from its first bytes before anything is
//! stored, hashed and counted as it streams to storage, abandoned the moment it passes
//! the size limit (at most one chunk past it is ever held).
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::rules::{SNIFF_BYTES, Sniffed, sniff};
use crate::{
    domain::{DomainError, DomainResult},
    store::blobs::{Blobs, Staged},
};

/// An upload's bytes, stored under a temporary key.
#[derive(Debug)]
pub struct Received {
    pub staged: Staged,
    pub size: u64,
    pub sha256: String,
    pub sniffed: Sniffed,
}

/// Why the body stream ended early: the client went away, or the transport refused it.
#[derive(Debug)]
pub struct BodyError(pub String);

/// Reads `body` into storage, refusing a type not allowed (before storing anything) and
/// anything over `max_bytes`.
pub async fn receive<S>(blobs: &Blobs, mut body: S, max_bytes: u64) -> DomainResult<Received>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    let too_large = || DomainError::AttachmentTooLarge(max_bytes);
    let interrupted =
        |e: BodyError| DomainError::InvalidInput(format!("the upload was interrupted: {}", e.0));
    // The head: enough to tell the type and an image's size.
    let mut head = BytesMut::new();
    let mut ended = false;
    while head.len() < SNIFF_BYTES {
        match body.next().await {
            Some(chunk) => head.extend_from_slice(&chunk.map_err(interrupted)?),
            None => {
                ended = true;
                break;
            }
        }
        if head.len() as u64 > max_bytes {
            return Err(too_large());
        }
    }
    if head.is_empty() {
        return Err(DomainError::InvalidInput("the attachment is empty".into()));
    }
    let sniffed = sniff(&head)?;
    let mut hasher = Sha256::new();
    let mut size = head.len() as u64;
    hasher.update(&head);
    let mut incoming = blobs.incoming().await?;
    let streamed = async {
        incoming.write(head.freeze()).await?;
        if !ended {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(interrupted)?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(too_large());
                }
                hasher.update(&chunk);
                incoming.write(chunk).await?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = streamed {
        incoming.abort().await;
        return Err(e);
    }
    Ok(Received {
        staged: incoming.finish().await?,
        size,
        sha256: hex::encode(hasher.finalize()),
        sniffed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn chunks(parts: Vec<Vec<u8>>) -> impl Stream<Item = Result<Bytes, BodyError>> + Unpin {
        stream::iter(parts.into_iter().map(|p| Ok(Bytes::from(p))))
    }

    fn pdf(len: usize) -> Vec<u8> {
        let mut bytes = b"%PDF-1.7\n".to_vec();
        bytes.resize(len, b'x');
        bytes
    }

    #[tokio::test]
    async fn a_body_is_hashed_counted_and_typed_across_chunks() {
        let blobs = Blobs::in_memory();
        let body = pdf(100_000);
        let parts = body.chunks(7_000).map(<[u8]>::to_vec).collect();
        let got = receive(&blobs, chunks(parts), 1_000_000).await.unwrap();
        assert_eq!(got.size, 100_000);
        assert_eq!(got.sha256, hex::encode(Sha256::digest(&body)));
        assert_eq!(got.sniffed.mime_type, "application/pdf");
    }

    #[tokio::test]
    async fn past_the_limit_the_upload_is_refused() {
        let blobs = Blobs::in_memory();
        let parts = pdf(200_000).chunks(10_000).map(<[u8]>::to_vec).collect();
        assert!(matches!(
            receive(&blobs, chunks(parts), 150_000).await,
            Err(DomainError::AttachmentTooLarge(150_000))
        ));
        // Also when the head alone is too big.
        assert!(matches!(
            receive(&blobs, chunks(vec![pdf(20)]), 10).await,
            Err(DomainError::AttachmentTooLarge(10))
        ));
        assert!(matches!(
            receive(&blobs, chunks(vec![pdf(10)]), 10).await,
            Ok(Received { size: 10, .. })
        ));
    }

    #[tokio::test]
    async fn a_disguised_or_empty_body_is_refused() {
        let blobs = Blobs::in_memory();
        assert!(matches!(
            receive(
                &blobs,
                chunks(vec![b"<html><body>hi</body></html>".to_vec()]),
                1000
            )
            .await,
            Err(DomainError::UnsupportedAttachmentType(_))
        ));
        assert!(matches!(
            receive(&blobs, chunks(vec![]), 1000).await,
            Err(DomainError::InvalidInput(_))
        ));
    }
}
