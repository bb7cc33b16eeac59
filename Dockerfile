# A minimal image of the static `agentidp` binary (musl): nothing but the binary, CA certificates
# for outbound HTTPS (Turso, Upstash, GitHub's keys), and a data directory.
#
#   docker build -t agentidp .
#   docker run -p 8787:8787 -v agentidp-data:/data \
#     -e AGENTIDP_ISSUER=https://id.example.com -e AGENTIDP_SIGNUP_TOKEN=... agentidp
#
# Listening on 0.0.0.0 in the container, sign-up is closed unless AGENTIDP_SIGNUP_TOKEN or
# AGENTIDP_SIGNUP=open is given (see README, "Configuration").
FROM rust:1.94-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ENV CC_x86_64_unknown_linux_musl=musl-gcc
RUN cargo build --locked --release --target x86_64-unknown-linux-musl -p agentidp \
    && mkdir -p /out/data \
    && cp target/x86_64-unknown-linux-musl/release/agentidp /out/agentidp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/agentidp /agentidp
COPY --from=build --chown=65534:65534 /out/data /data
USER 65534:65534
ENV AGENTIDP_LISTEN=0.0.0.0:8787 AGENTIDP_DATA_DIR=/data
EXPOSE 8787
VOLUME /data
ENTRYPOINT ["/agentidp"]
CMD ["serve"]
