//! Lingering on a refused upload, as nginx's `lingering_close` does. A handler that
//! answers before reading the whole body (413 past the size limit, 415 after sniffing)
//! leaves the client still sending; closing then makes the kernel reset the connection
//! over the unread bytes, and the client often loses the answer with it ("fetch
//! failed" instead of 413). So the body is read by a task of its own that hands it to
//! the handler and, once the handler lets go, reads and discards what is left, within
//! bounds, while the answer goes out.
use std::time::Duration;

use axum::{body::Body, extract::Request, middleware::Next, response::Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// What is read and thrown away after the handler is done, at most.
const LINGER_BYTES: usize = 4 << 20;
const LINGER_TIME: Duration = Duration::from_secs(5);

pub async fn drain_unread(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (tx, rx) = mpsc::channel::<Result<Bytes, axum::Error>>(4);
    tokio::spawn(forward(body, tx));
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    next.run(Request::from_parts(parts, body)).await
}

/// Hands the body over chunk by chunk; once nobody takes them, discards the rest.
async fn forward(body: Body, tx: mpsc::Sender<Result<Bytes, axum::Error>>) {
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        if let Err(mpsc::error::SendError(_)) = tx.send(chunk).await {
            break;
        }
    }
    drop(tx);
    let mut discarded = 0usize;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Some(Ok(chunk)) = chunks.next().await {
            discarded += chunk.len();
            if discarded > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}
