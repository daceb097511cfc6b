# Multi-stage build. Targets:
#   api, worker      one binary each (docker compose builds these)
#   patreon-mock     the local Patreon stand-in (compose profile `mock`)
#   server (last)    api, worker and migration in one image; `CMD` picks the program
#                    (the render.yaml blueprint runs `api` and `worker run` from it)
#   docker build --target api -t patreon-gate-api .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p api -p worker -p patreon-mock -p migration \
    && mkdir -p /out \
    && cp target/release/api target/release/worker target/release/patreon-mock \
          target/release/migration /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app gate
WORKDIR /app
USER gate

FROM runtime AS api
COPY --from=build /out/api /out/migration /usr/local/bin/
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["api"]

FROM runtime AS worker
COPY --from=build /out/worker /usr/local/bin/worker
# /metrics, /healthz and /readyz (WORKER_HTTP_PORT).
EXPOSE 9091
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:9091/healthz || exit 1
ENTRYPOINT ["worker"]

FROM runtime AS patreon-mock
COPY --from=build /out/patreon-mock /usr/local/bin/patreon-mock
ENTRYPOINT ["patreon-mock"]

FROM runtime AS server
COPY --from=build /out/api /out/worker /out/migration /usr/local/bin/
EXPOSE 8080 9091
CMD ["api"]
