# p1mqtt in a container: a slim image running as a non-root user in the dialout group.
#   docker build -t p1mqtt .
#   docker run -d --device /dev/serial/by-id/usb-...-port0:/dev/p1 \
#       -e P1MQTT_MQTT_BROKER=mqtt://192.168.1.10:1883 -v p1mqtt-data:/data p1mqtt
# A whole setup with Mosquitto: docker-compose.example.yml. Settings: P1MQTT_* variables
# (docs/configuration.md) or a configuration file named by P1MQTT_CONFIG.

# --- build the wheels (p1mqtt and its dependencies) --------------------------------------
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- the image ---------------------------------------------------------------------------
FROM python:3.12-slim
LABEL org.opencontainers.image.title="p1mqtt" \
      org.opencontainers.image.description="Smart meter P1 port (e-MUCS, DSMR) to MQTT" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/p1mqtt/p1mqtt"

# STATE_DIRECTORY is where p1mqtt keeps its status file (read by `p1mqtt health`); it is the
# variable systemd sets too. The meter's port is passed in as /dev/p1 (see `devices:`).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATE_DIRECTORY=/data \
    P1MQTT_SERIAL_PORT=/dev/p1

COPY --from=build /wheels /wheels
# The user's primary group is dialout (gid 20 on Debian, Ubuntu, Raspberry Pi OS), the group
# that owns serial devices on the host; on other hosts add theirs with `group_add:`.
RUN pip install --no-cache-dir --no-index --find-links=/wheels p1mqtt \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --gid dialout --no-create-home --home-dir /data \
       --shell /usr/sbin/nologin p1mqtt \
    && mkdir -p /data \
    && chown p1mqtt:dialout /data

USER p1mqtt
WORKDIR /data
VOLUME /data

# Healthy while telegrams arrive and the broker is connected (docker ps shows it).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["p1mqtt", "health", "--max-age", "60"]

ENTRYPOINT ["p1mqtt"]
CMD ["run"]
