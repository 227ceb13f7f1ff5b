# The pqrelay image: the static binary, the CA bundle (for https:// UPSTREAM
# and peers, rediss://), a non-root user, nothing else: no shell, no package
# manager, no libc. Build it with `make image`, which compiles the binary
# (CGO_ENABLED=0, -trimpath, version and commit set by the linker) and the
# CA bundle into build/image/, the build context, then runs
#
#   buildah bud --timestamp 0 -f Dockerfile -t localhost/pqrelay:dev build/image
#
# --timestamp 0 clears creation times, so the same binary and bundle give
# the same image digest. README.md "Deploying" shows the multi-stage variant
# for a CI machine that can pull golang images.
FROM scratch

ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pqrelay" \
      org.opencontainers.image.description="post-quantum API relay: one relay of a pqrelay pair" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pqrelay /pqrelay

# 65532 is the "nonroot" user of distroless images; numeric, so that
# Kubernetes' runAsNonRoot can verify it without an /etc/passwd.
USER 65532:65532
# The relay's PORT and METRICS_PORT defaults.
EXPOSE 8080 9090
ENTRYPOINT ["/pqrelay"]
