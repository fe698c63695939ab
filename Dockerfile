# AOP in a container: a build stage with the compilers, a runtime stage with
# only the libraries, running as a non-root user, data on a volume.
#
#   podman build -t aop .             (or docker build)
#   podman run -d -p 3000:3000 -v aop-data:/var/lib/aop \
#     -e JWT_ACCESS_SECRET=... -e JWT_REFRESH_SECRET=... aop
#
# BASE is Debian 12 slim; a machine with no registry builds its own base from
# a Debian mirror (scripts/test-container.sh, docs/install.md).
ARG BASE=debian:12-slim

FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc make pkg-config libc6-dev \
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libhiredis-dev libssl-dev \
      zlib1g-dev libcrypt-dev libjwt-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY src src
COPY config config
COPY scripts scripts
COPY contrib contrib
COPY docs docs
# the web console, built into the binary (its vendored libraries included)
COPY console console
ARG COMMIT=unknown
RUN make -j"$(nproc)" COMMIT="$COMMIT" build/aop build/aop.1 \
 && make install COMMIT="$COMMIT" PREFIX=/usr DESTDIR=/out

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmicrohttpd12 libjansson4 libjwt0 libcurl4 \
      libsqlite3-0 libpq5 libhiredis0.14 libssl3 zlib1g libcrypt1 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/aop --shell /usr/sbin/nologin aop \
 && install -d -o aop -g aop -m 0700 /var/lib/aop
COPY --from=build /out/usr/bin/aop /usr/bin/aop
COPY --from=build /out/usr/share/man/man1/aop.1 /usr/share/man/man1/aop.1
COPY --from=build /out/usr/share/doc/aop /usr/share/doc/aop

# Production by default: JWT_ACCESS_SECRET and JWT_REFRESH_SECRET must be
# given (at least 32 bytes each, distinct), or the server refuses to start.
ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=sqlite:///var/lib/aop/aop.db \
    DATA_DIR=/var/lib/aop
VOLUME /var/lib/aop
WORKDIR /var/lib/aop
USER aop
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/health" >/dev/null || exit 1
# SIGTERM (docker stop) hands running executions back to the queue and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/aop"]
CMD ["serve"]
