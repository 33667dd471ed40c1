# swarmhub images. Base images are build arguments so hosts without a registry can point them
# at locally built images.
#
#   docker build --target nfsd -t swarmhub/nfsd .            (the default target)
#   docker build --target plugin-rootfs -t swarmhub/plugin-rootfs .
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

# The swarmhub-nfs managed plugin's rootfs. Docker installs plugins from a directory with
# config.json and rootfs/, so this image is exported rather than run:
#
#   docker build --target plugin-rootfs -t swarmhub/plugin-rootfs .
#   mkdir -p plugin/rootfs && cp plugin-config/config.json plugin/
#   docker export "$(docker create swarmhub/plugin-rootfs)" | tar -x -C plugin/rootfs
#   docker plugin create swarmhub-nfs plugin
#
# (plugin-config/build.sh does the same without this image, from a cargo build.)
FROM ${RUST_IMAGE} AS build-plugin
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p swarmhub-volume-plugin \
 && mkdir -p /out/rootfs/run/docker/plugins /out/rootfs/mnt/volumes /out/rootfs/state /out/rootfs/tmp \
 && chmod 1777 /out/rootfs/tmp \
 && touch /out/rootfs/run/docker.sock \
 && strip --strip-debug -o /out/rootfs/swarmhub-volume-plugin \
      target/x86_64-unknown-linux-gnu/release/swarmhub-volume-plugin

FROM scratch AS plugin-rootfs
COPY --from=build-plugin /out/rootfs/ /
ENTRYPOINT ["/swarmhub-volume-plugin"]

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

