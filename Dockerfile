# swarmhub images. Base images are build arguments so hosts without a registry can point them
# at locally built images.
#
#   docker build --target nfsd -t swarmhub/nfsd .
#
# Binaries are linked statically (glibc, crt-static) so the runtime stages need no base image.

ARG RUST_IMAGE=rust:1-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p swarmhub-nfsd \
 && mkdir -p /out/data \
 && cp target/x86_64-unknown-linux-gnu/release/swarmhub-nfsd /out/

# swarmhub-nfsd: runs as root and needs CAP_DAC_READ_SEARCH (open_by_handle_at) on top of
# Docker's defaults; mount the data root at /data on ext4, xfs or btrfs.
FROM scratch AS nfsd
COPY --from=build /out/swarmhub-nfsd /swarmhub-nfsd
COPY --from=build /out/data /data
ENV SWARMHUB_NFSD_DATA_DIR=/data \
    SWARMHUB_NFSD_LISTEN=0.0.0.0:2049 \
    SWARMHUB_NFSD_API_LISTEN=0.0.0.0:8049
EXPOSE 2049 8049
STOPSIGNAL SIGTERM
ENTRYPOINT ["/swarmhub-nfsd"]
