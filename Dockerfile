# realtime-chat in a container: the release binary built in a Rust image, run as a
# non-root user in a slim Debian image. docker-compose.yml runs it as two nodes behind
# nginx; alone it runs on SQLite in /data:
#
#   docker build -t realtime-chat .
#   docker run -p 5000:5000 -v chat-data:/data realtime-chat
#
# The whole workspace is copied (.dockerignore keeps out target/, node_modules/, .git
# and local secrets): the root crate builds against the workspace members and the
# patched crates under vendor/ ([patch.crates-io] in Cargo.toml), and embeds
# test_client.html and static/ with include_str!. Copying everything means a source
# change rebuilds the dependencies too; that is the price of a Dockerfile with no list
# of workspace files to keep in step (and of needing no BuildKit cache mounts, which
# the classic builder behind docker-compose 1.x refuses).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin realtime-chat

FROM debian:bookworm-slim
# ca-certificates: for sslmode=require/verify-full to a PostgreSQL across a network.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A dedicated user with a fixed uid, so a volume's ownership and a runAsNonRoot
# policy can name it. /data holds the SQLite database and the generated JWT secret
# file when DATABASE_URL is left at its default (start-up refuses a secret file that
# others may read, hence 0700).
RUN groupadd --system --gid 10001 chat \
    && useradd --system --uid 10001 --gid chat --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin chat \
    && mkdir /data \
    && chown chat:chat /data \
    && chmod 0700 /data
COPY --from=build /src/target/release/realtime-chat /usr/local/bin/realtime-chat

ENV HOST=0.0.0.0 \
    PORT=5000 \
    DATABASE_URL=sqlite:///data/realtime-chat.db?mode=rwc
WORKDIR /data
USER 10001:10001
EXPOSE 5000

# GET /health answers 200 while the database answers, 503 otherwise. The slim image
# has no curl or wget, and installing one (with its TLS and HTTP/2 libraries) only
# for this is not worth it: bash, which the image has, opens the TCP connection
# through /dev/tcp, and the status line is all the check reads. It asks 127.0.0.1, so
# it suits HOST=0.0.0.0 (the default here) or 127.0.0.1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-5000} && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 2 _ status _ <&3 && [ \"$status\" = 200 ]"]

# `serve` is also what the binary runs with no command; naming it keeps `docker run
# realtime-chat migrate` (or `user create …`) an obvious override.
CMD ["realtime-chat", "serve"]
