# bouncer in a container. Build: docker build -t bouncer .
#
# The build stage runs the build .ci/run runs (same Rust as CI's machines, release profile,
# --locked, on Debian bookworm); the runtime image has the firewall tools and runs as an
# unprivileged user. `analyze`, `export`, `status` and a dry-run `follow` need nothing more;
# only `follow --enforce` needs root with CAP_NET_ADMIN (+ CAP_NET_RAW) on the host network:
# see compose.yaml.

FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && install -s -m 0755 target/release/bouncer /usr/local/bin/bouncer

FROM debian:bookworm-slim
# Unpinned on purpose: the distribution's security updates are wanted.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates ipset iptables nftables \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/bouncer --create-home bouncer
COPY --from=build /usr/local/bin/bouncer /usr/local/bin/bouncer
USER 10001:10001
WORKDIR /var/lib/bouncer
ENTRYPOINT ["/usr/local/bin/bouncer"]
CMD ["--help"]
