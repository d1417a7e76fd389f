# certwatch container image.
#
# The image is FROM scratch: it holds a static certwatch binary, a CA bundle
# for verifying endpoint chains, and a default configuration, nothing else (no
# shell, no package manager, no libc). Nothing is compiled or downloaded while
# building it: `make image` first builds the static binary
# (CGO_ENABLED=0, -trimpath, version information through -ldflags) and copies
# the build machine's CA bundle into .build/, then builds this file with
# podman (`podman --storage-driver=vfs build`), so it works where base images
# cannot be pulled and RUN steps cannot run.
#
# Elsewhere, Docker builds the same image from the same folder:
#   make image-context
#   docker build -t ghcr.io/certwatch/certwatch:$(cat VERSION) \
#     --build-arg VERSION=$(cat VERSION) --build-arg REVISION=$(git rev-parse HEAD) .
# or simply: make image IMAGE_BUILDER="docker build"
#
# Run it:
#   podman run -p 9860:9860 ghcr.io/certwatch/certwatch:0.1.0
#   podman run -p 9860:9860 -v ./config.yml:/etc/certwatch/config.yml:ro ghcr.io/certwatch/certwatch:0.1.0

FROM scratch

# Folder holding the prepared binary and CA bundle (make image-context).
ARG BUILD_DIR=.build
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG LICENSES=NOASSERTION

LABEL org.opencontainers.image.title="certwatch" \
      org.opencontainers.image.description="Prometheus exporter for the expiry and validity of X.509 certificates on TLS endpoints, in files and in Kubernetes" \
      org.opencontainers.image.source="https://github.com/certwatch/certwatch" \
      org.opencontainers.image.url="https://github.com/certwatch/certwatch" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# --chmod: readable by USER 65534 whatever the umask of the build machine.
COPY --chmod=0755 ${BUILD_DIR}/certwatch /bin/certwatch
# Roots for verifying endpoint chains (Go reads this path on Linux).
COPY --chmod=0644 ${BUILD_DIR}/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chmod=0644 deploy/container/config.yml /etc/certwatch/config.yml

# nobody:nogroup. Everything above is world-readable; certwatch writes nothing,
# so the root filesystem can be mounted read-only.
USER 65534:65534
EXPOSE 9860
ENTRYPOINT ["/bin/certwatch"]
CMD ["--config.file=/etc/certwatch/config.yml"]
