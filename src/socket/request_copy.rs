//! Lets each connection's HTTP read buffer go once the Socket.IO handshake is parsed.
//!
//! engineioxide keeps every connection's request head (URI, headers, extensions) for the life of
//! the socket. hyper parses those without copying: they are slices of the connection's
//! read buffer, so keeping them kept the whole buffer, 16 KiB per idle socket and about
//! half of its memory (measured with heaptrack; see BENCHMARKS.md). Copying the few
//! hundred bytes into allocations of their own lets the buffer be freed.
use axum::{
    extract::OriginalUri,
    http::{HeaderMap, HeaderName, HeaderValue, Request, Uri},
};

/// The path socketioxide serves (its default).
const SOCKET_IO_PATH: &str = "/socket.io/";

/// A request whose URI and headers own their bytes; other requests pass untouched.
pub fn detach_head<B>(req: Request<B>) -> Request<B> {
    if !req.uri().path().starts_with(SOCKET_IO_PATH) {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    parts.headers = owned_headers(&parts.headers);
    if let Some(uri) = owned_uri(&parts.uri) {
        parts.uri = uri;
    }
    // axum's router keeps a clone of the URI in the extensions, which engineioxide keeps too.
    if let Some(uri) = parts
        .extensions
        .get::<OriginalUri>()
        .and_then(|o| owned_uri(&o.0))
    {
        parts.extensions.insert(OriginalUri(uri));
    }
    Request::from_parts(parts, body)
}

fn owned_uri(uri: &Uri) -> Option<Uri> {
    Uri::try_from(uri.to_string()).ok()
}

fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // `from_bytes` copies; a value that could not be rebuilt keeps its original.
        let name = HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        owned.append(name, copy);
    }
    owned
}

#[cfg(test)]
mod tests {
    use axum::{
        extract::OriginalUri,
        http::{Request, header},
    };

    use super::detach_head;

    #[test]
    fn keeps_every_header_and_the_uri() {
        let req = Request::builder()
            .uri("http://h/socket.io/?EIO=4&transport=websocket")
            .header(header::UPGRADE, "websocket")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("x-multi", "a")
            .header("x-multi", "b")
            .extension(OriginalUri(
                "http://h/socket.io/?EIO=4&transport=websocket".parse().unwrap(),
            ))
            .body(())
            .unwrap();
        let before = req.headers().clone();
        let uri = req.uri().clone();
        let after = detach_head(req);
        assert_eq!(after.headers(), &before);
        assert_eq!(after.headers().get_all("x-multi").iter().count(), 2);
        assert_eq!(after.uri(), &uri);
        assert_eq!(after.extensions().get::<OriginalUri>().map(|o| &o.0), Some(&uri));
    }

    #[test]
    fn copies_instead_of_sharing() {
        let value = axum::http::HeaderValue::from_static("websocket");
        let req = Request::builder()
            .uri("/socket.io/?EIO=4")
            .header(header::UPGRADE, value)
            .body(())
            .unwrap();
        let original = req.headers()[header::UPGRADE].as_bytes().as_ptr();
        let after = detach_head(req);
        assert_ne!(after.headers()[header::UPGRADE].as_bytes().as_ptr(), original);
    }
}
