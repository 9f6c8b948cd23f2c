//! The bundled browser test page (`test_client.html`) and the two scripts it loads.
//!
//! All three are compiled into the binary, so the page works whatever the working
//! directory, offline, and from a phone on the LAN: the page names its scripts and the
//! Socket.IO endpoint by relative URLs, so everything comes from the origin that served it.
use axum::{
    http::{HeaderName, HeaderValue, header},
    response::IntoResponse,
};

const PAGE: &str = include_str!("../../test_client.html");
const PAGE_SCRIPT: &str = include_str!("../../static/test_client.js");
/// The browser build of npm `socket.io-client`, unmodified; its version is in
/// `static/SOCKET_IO_CLIENT_VERSION`.
const SOCKET_IO_CLIENT: &str = include_str!("../../static/socket.io.min.js");

/// The page runs no inline script at all (its code is `/static/test_client.js`), so an
/// injected `<script>` or `onerror=` attribute is refused even if some message ever
/// reached the DOM as markup. `'self'` in `connect-src` also covers `ws:`/`wss:` to the
/// same host and port (CSP level 3), which the Socket.IO upgrade needs. Inline styles stay
/// allowed: the page keeps its CSS in one `<style>` block.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// `GET /` and `GET /test_client.html`: the page, with its Content-Security-Policy.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        asset(HTML, PAGE),
    )
}

/// `GET /static/test_client.js`: the page's code.
pub async fn page_script() -> impl IntoResponse {
    asset(JAVASCRIPT, PAGE_SCRIPT)
}

/// `GET /static/socket.io.min.js`: the vendored Socket.IO client.
pub async fn socket_io_client() -> impl IntoResponse {
    asset(JAVASCRIPT, SOCKET_IO_CLIENT)
}

/// A static body with its type. `no-cache` makes browsers revalidate, so a rebuilt
/// server's page and script are never mixed with a cached copy of the other.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let headers: [(HeaderName, HeaderValue); 3] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body)
}
