# One image for every binary of the system (gateway, tracker, library,
# inventory, notifier) and the schema migrations; the argument chooses:
#   docker run IMAGE gateway      docker run IMAGE tracker --config
#   docker run IMAGE migrate      (PGHOST, PGUSER, PGPASSWORD, ... set)
# Build: docker build -t REGISTRY/elwing:VERSION .   (README.md, "Deployment")

# --- build: the CMake build, then what the image ships -----------------
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config ca-certificates \
        libuv1-dev libh2o-dev libnats-dev libjansson-dev libssl-dev libpq-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" \
 && sh deploy/k8s/image/collect.sh /src /build /out

# --- runtime: the binaries, their shared libraries, psql for migrate ---
FROM debian:bookworm-slim
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends \
        ca-certificates postgresql-client \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --gid 10001 elwing \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin elwing
COPY --from=build /out/libexec/ /usr/local/libexec/elwing/
COPY --from=build /out/share/ /usr/local/share/elwing/
COPY deploy/k8s/image/entrypoint.sh /usr/local/bin/elwing
USER 10001:10001
# gateway: HTTP, /livez, /readyz, /metrics; services: HEALTH_PORT (8081 in k8s)
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/elwing"]
CMD ["--help"]
