# syntax=docker/dockerfile:1
# The e2e upstream MCP server for e2e/docker-compose.yaml. Build context: the repository root.
FROM golang:1.27.3-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /out/mcpserver ./e2e/compose/mcpserver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mcpserver /usr/local/bin/mcpserver
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mcpserver"]
CMD ["-listen", "127.0.0.1:8081", "-mode", "stateful"]
