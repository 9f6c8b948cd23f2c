FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin realtime-chat

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/realtime-chat /usr/local/bin/realtime-chat
EXPOSE 5000
CMD ["realtime-chat", "serve"]
