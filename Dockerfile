# Builds the prost binary from source; every PROST service runs from this image.

# The console's assets (web/), which the binary embeds.
FROM node:20-bookworm AS console
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN mkdir -p ../pkg/console/dist && npm run build

FROM golang:1.26 AS build
WORKDIR /src
COPY . .
COPY --from=console /src/pkg/console/dist/app ./pkg/console/dist/app
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/prost ./cmd/prost
# Where the private bus's keys live (volumes in docker-compose.yml), owned by
# the user the services run as.
RUN mkdir -p /out/var/lib/prost/nats-auth /out/var/lib/prost/nats-server

# The factory service (prost serve factory) needs the Go toolchain where it
# runs: it builds, tests and scans the modules it makes (docs/factory.md).
FROM golang:1.26 AS factory
RUN useradd --create-home --uid 10001 prost && mkdir -p /var/lib/prost-factory && chown prost /var/lib/prost-factory
COPY --from=build /out/prost /usr/local/bin/prost
COPY nats /etc/prost/nats
COPY schemas /etc/prost/schemas
ENV PROST_NATS_DIR=/etc/prost/nats \
    PROST_SCHEMAS_DIR=/etc/prost/schemas \
    PROST_HTTP_ADDR=0.0.0.0:8080 \
    PROST_LOG_FORMAT=json \
    PROST_FACTORY_WORK_DIR=/var/lib/prost-factory/work \
    PROST_FACTORY_TOOLS_DIR=/var/lib/prost-factory/tools
USER prost
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/prost"]

# Every other service runs from this image (the default target).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/prost /usr/local/bin/prost
COPY --from=build --chown=65532:65532 /out/var/lib/prost /var/lib/prost
COPY nats /etc/prost/nats
COPY schemas /etc/prost/schemas
ENV PROST_NATS_DIR=/etc/prost/nats \
    PROST_SCHEMAS_DIR=/etc/prost/schemas \
    PROST_HTTP_ADDR=0.0.0.0:8080 \
    PROST_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/prost"]
