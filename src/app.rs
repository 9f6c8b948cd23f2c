//! Start-up as a story: connect, migrate, start the writer, mount REST and Socket.IO, serve.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Json, Router, extract::DefaultBodyLimit, http::StatusCode, serve::ListenerExt};
use sea_orm::DatabaseConnection;
use serde_json::json;
use socketioxide::{ParserConfig, SocketIo};
use tokio::net::{TcpListener, TcpSocket};
use tower::{ServiceBuilder, util::MapRequestLayer};
use tower_http::{
    cors::{AllowOrigin, Any, CorsLayer},
    trace::TraceLayer,
};

use crate::{
    auth::jwt::JwtKeys,
    cluster::{Adapter, Cluster},
    config::{Config, CorsOrigins},
    domain::{
        attachments::Attachments,
        groups::Groups,
        hashing::Hasher,
        limits::{Connections, Limits, Sockets, UserRate},
        messaging::Messaging,
        presence::Presence,
        sessions::Sessions,
        typing::Typing,
    },
    http::{
        self,
        observe::{Scrape, metrics_router},
    },
    monitoring, socket,
    state::AppState,
    store::{self, blobs::Blobs},
};

/// Largest REST request body.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Socket.IO packets may carry a message of `max_message_bytes` (or an encrypted one of
/// `max_encrypted_bytes`) plus its packet envelope.
const PACKET_OVERHEAD: u64 = 4 * 1024;
/// A connect storm (every client of a dead node reconnecting) must not overflow the
/// accept queue; tokio's default backlog of 128 does.
const LISTEN_BACKLOG: u32 = 4096;

/// Opens the database named by the configuration and brings its schema up to date.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = store::db::connect(&config.database_url)
        .await
        .context("DATABASE_URL: cannot connect to the database")?;
    store::db::migrate(&db)
        .await
        .context("applying database migrations failed")?;
    Ok(db)
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    let listener = bind(&config).await?;
    let addr = listener.local_addr()?;
    if let Some(metrics_addr) = config.metrics_addr {
        serve_metrics(metrics_addr, db.clone()).await?;
    }
    let drain_timeout = config.drain_timeout;
    let node_id = config.node_id.clone();
    let (app, shutdown) = build(config, db).await?;
    // One plain line on stdout, so scripts and tests can find a random port.
    println!("realtime-chat listening on {addr}");
    tracing::info!(%addr, node = %node_id, "listening");
    // Without TCP_NODELAY, a small frame written right after another (the ping that asks
    // for proof of receipt after a message) waits for the client's delayed ACK: ~40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
    });
    let (leaving, left) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            if tokio::time::timeout(drain_timeout, shutdown.run()).await.is_err() {
                tracing::warn!("DRAIN_TIMEOUT_MS passed before the send queue drained");
            }
            let _ = leaving.send(());
        })
        .into_future();
    // After the drain, requests still open (a long poll) get the rest of the timeout.
    let overdue = async {
        if left.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        _ = overdue => tracing::warn!("connections still open after DRAIN_TIMEOUT_MS: exiting"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The whole application: REST routes and the Socket.IO layer over one shared state,
/// and what leaving gracefully needs.
pub async fn build(
    config: Config,
    db: DatabaseConnection,
) -> anyhow::Result<(Router, socket::shutdown::Shutdown)> {
    let config = Arc::new(config);
    let cluster = Cluster::new(&config)?;
    if cluster.bus.is_clustered() {
        tracing::info!(node = %config.node_id, "joining other nodes through Redis");
    }
    let metrics = monitoring::install();
    monitoring::record_limits(&config);
    tokio::spawn(monitoring::upkeep(metrics.clone()));
    // With METRICS_ADDR, `/metrics` is served there only (see `serve_metrics`).
    let public_metrics = match config.metrics_addr {
        None => metrics_router(Scrape {
            handle: metrics,
            db: db.clone(),
        }),
        Some(_) => Router::new(),
    };
    let presence = Arc::new(match &cluster.presence {
        Some(registry) => Presence::clustered(registry.clone()),
        None => Presence::default(),
    });
    let typing = Arc::new(Typing::new(config.typing_throttle));
    let push = crate::push::start(&db, presence.clone(), config.push.as_ref())?
        .map(|p| p as Arc<dyn crate::domain::messaging::AfterCommit>);
    let (messaging, outcomes) = Messaging::start(
        db.clone(),
        presence.clone(),
        typing.clone(),
        config.presence_grace,
        config.catch_up_limit,
        push,
    );
    let groups = Groups::new(db.clone(), messaging.clone(), config.group_max_members);
    let jwt = JwtKeys::new(&config.jwt_secret, config.jwt_expires_in_hours)
        .with_parties(config.jwt_issuer.clone(), config.jwt_audience.clone());
    let sessions = Sessions::new(db.clone(), jwt.clone(), messaging.clone());
    if let Some(registry) = &cluster.presence {
        tokio::spawn(
            registry
                .clone()
                .upkeep(config.presence_node_ttl, presence.clone(), messaging.clone()),
        );
    }
    let attachments = Attachments::new(
        db.clone(),
        Blobs::open(&config.attachments.storage).context("attachment storage")?,
        config.attachments.max_bytes,
    );
    attachments.spawn_sweeper(config.attachments.orphan_ttl, config.attachments.sweep_interval);
    crate::domain::search::spawn_indexer(db.clone());
    let state = AppState {
        attachments,
        cluster: cluster.clone(),
        groups,
        hasher: Hasher::new(config.hash_concurrency, config.hash_queue),
        limits: Limits {
            sends: UserRate::new(config.rate_sends_per_sec, config.rate_sends_burst),
            typing: UserRate::new(config.rate_typing_per_sec, 2 * config.rate_typing_per_sec),
            sync: UserRate::new(config.rate_sync_per_sec, 2 * config.rate_sync_per_sec),
            lookups: UserRate::new(config.rate_lookups_per_sec, 2 * config.rate_lookups_per_sec),
            sockets: Sockets::new(config.max_sockets_per_user),
        },
        db,
        jwt,
        sessions,
        config: config.clone(),
        messaging,
        presence,
        typing,
    };
    state.limits.spawn_sweeper();

    let sends = Arc::new(socket::shutdown::SendsInFlight::default());
    let (sio_layer, io) = SocketIo::builder()
        .with_adapter::<Adapter>(cluster.adapter())
        .with_state(state.clone())
        // Which messages each connection was handed, for its client's reconnect.
        .with_state(Arc::new(socket::proof::Recovery::default()))
        .with_state(sends.clone())
        .max_payload(config.max_message_bytes.max(config.max_encrypted_bytes) as u64 + PACKET_OVERHEAD)
        // The defaults accept 64 MiB messages and 16 MiB frames, read whole before any
        // check, even from a socket that never authenticates: nothing we accept is near that.
        .ws_max_message_size(
            config.max_message_bytes.max(config.max_encrypted_bytes) + PACKET_OVERHEAD as usize,
        )
        .ws_max_frame_size(
            config.max_message_bytes.max(config.max_encrypted_bytes) + PACKET_OVERHEAD as usize,
        )
        // The protocol has no binary attachments; a packet announcing one closes the socket.
        .with_parser(
            ParserConfig::common()
                .max_incoming_binaries(0)
                .max_incoming_binary_buf_size(0)
                .packet_completion_timeout(Duration::from_secs(5)),
        )
        // Idle sockets dominate memory; 1 KiB reads suffice for chat-sized frames.
        .ws_read_buffer_size(1024)
        // Room for a burst (a catch-up, many senders at once) without dropping packets.
        .max_buffer_size(8 * 1024)
        // An Engine.IO session that never sends a Socket.IO CONNECT is closed.
        .connect_timeout(config.connect_timeout)
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .build_layer();
    socket::register(&io).await?;
    tokio::spawn(socket::dispatch::run(
        io.clone(),
        state.clone(),
        outcomes,
        cluster,
    ));
    let connections = Connections::new(config.max_connections);
    let shutdown = socket::shutdown::Shutdown {
        io,
        messaging: state.messaging.clone(),
        connections: connections.clone(),
        sends,
    };

    let router = http::router()
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({ "error": "not found" }))) })
        .with_state(state)
        .merge(public_metrics)
        // Inside the Socket.IO layer: it sees REST requests only, with their matched route.
        .layer(axum::middleware::from_fn(http::observe::track))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(cors(&config.cors_origins))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                .layer(MapRequestLayer::new(socket::request_copy::detach_head))
                .layer(axum::middleware::from_fn_with_state(
                    connections,
                    socket::handshake::admit,
                ))
                .layer(sio_layer),
        );
    Ok((router, shutdown))
}

/// `GET /metrics` on its own listener (`METRICS_ADDR`), e.g. one only the scraper reaches.
async fn serve_metrics(addr: SocketAddr, db: DatabaseConnection) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("METRICS_ADDR: cannot listen on {addr}"))?;
    let app = metrics_router(Scrape {
        handle: monitoring::install(),
        db,
    });
    tracing::info!(%addr, "metrics listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}

fn cors(origins: &CorsOrigins) -> CorsLayer {
    let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any);
    match origins {
        CorsOrigins::Any => layer.allow_origin(Any),
        CorsOrigins::List(list) => {
            let list = list.iter().filter_map(|o| o.parse().ok()).collect::<Vec<_>>();
            layer.allow_origin(AllowOrigin::list(list))
        }
    }
}

async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = tokio::net::lookup_host((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("HOST: cannot resolve `{}`", config.host))?
        .next()
        .with_context(|| format!("HOST: `{}` resolves to no address", config.host))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("PORT: cannot listen on {addr}"))?;
    Ok(socket.listen(LISTEN_BACKLOG)?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
