# syntax=docker/dockerfile:1
# jira-userprops: a static binary on distroless, non-root, SQLite data in /data.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# A statically linked glibc binary: the final image needs no libc of its own.
ENV RUSTFLAGS="-C target-feature=+crt-static"
# The commit built, for the build_info metric (no .git in the build context).
ARG COMMIT=unknown
ENV JIRA_USERPROPS_COMMIT=${COMMIT}

# Dependencies first, in a layer of their own: it is rebuilt only when Cargo.toml or Cargo.lock
# change, not on every change to the sources.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --target "$(uname -m)-unknown-linux-gnu" \
    && rm -rf src

COPY build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY docs/seed.schema.json ./docs/seed.schema.json
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --target "$(uname -m)-unknown-linux-gnu" \
    && cp "target/$(uname -m)-unknown-linux-gnu/release/jira-userprops" /jira-userprops \
    && mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="jira-userprops" \
      org.opencontainers.image.description="A stand-in server for Jira Cloud's user properties REST API" \
      org.opencontainers.image.source="https://github.com/jira-userprops/jira-userprops" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /jira-userprops /jira-userprops
COPY LICENSE-MIT LICENSE-APACHE /licenses/
COPY --from=build --chown=65532:65532 /data /data
# The address file lets `healthcheck` find the port however it was set (flag or environment).
# The shutdown grace stays under the 10 s Docker and Compose wait between SIGTERM and SIGKILL.
ENV JIRA_USERPROPS_LISTEN=0.0.0.0:8080 \
    JIRA_USERPROPS_DATABASE_URL=sqlite:/data/jira-userprops.db \
    JIRA_USERPROPS_ADDRESS_FILE=/tmp/jira-userprops.address \
    JIRA_USERPROPS_SHUTDOWN_GRACE=8
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/jira-userprops", "healthcheck"]
ENTRYPOINT ["/jira-userprops"]
CMD ["serve"]
