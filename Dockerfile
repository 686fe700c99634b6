# syntax=docker/dockerfile:1
# Build stage: cgo is on because the Postgres SQL classifier (pg_query_go) links the Postgres
# parser; reproducible paths, version stamped.
FROM golang:1.27.3-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X github.com/mcpguard/mcpguard/internal/app.Version=${VERSION}" \
      -o /out/mcpguard ./cmd/mcpguard

# Runtime stage: distroless with glibc (the binary is dynamically linked), no shell, non-root (uid 65532).
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/mcpguard /usr/local/bin/mcpguard
WORKDIR /var/lib/mcpguard
USER 65532:65532
# gRPC for Envoy (ext_authz + ext_proc) and the admin HTTP port. In a container the config
# must listen on 0.0.0.0 (the embedded default binds loopback only): mount one and pass --config.
EXPOSE 9001 9002
ENTRYPOINT ["/usr/local/bin/mcpguard"]
CMD ["serve", "--config", "/etc/mcpguard/config.yaml"]
