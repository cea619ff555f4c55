# Portcullis image: a static binary on distroless, running as nonroot (65532).
#   docker build -t portcullis:dev .
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 -t portcullis:dev .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src

# Dependencies first, so a source change does not download modules again.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /portcullis ./cmd/portcullis

FROM gcr.io/distroless/static:nonroot
COPY --from=build /portcullis /portcullis
USER 65532:65532
# 9001 ext_authz gRPC, 9002 HTTP forward-auth, 8080 metrics, 8081 /healthz and /readyz.
EXPOSE 9001 9002 8080 8081
ENTRYPOINT ["/portcullis"]
CMD ["serve"]
