"""Discovery for home automation systems: pure builders of the messages that announce the meter.

* :mod:`p1mqtt.discovery.homeassistant`: Home Assistant MQTT discovery (on by default).
* :mod:`p1mqtt.discovery.homie`: the Homie 4.0 convention, which openHAB discovers (off by
  default).

Both read the telegram and the OBIS catalogue and return :class:`p1mqtt.topics.Message` lists;
publishing them, and when, is the service's business.
"""

from p1mqtt.discovery.homeassistant import (
    DEFAULT_DISCOVERY_PREFIX,
    HaDevice,
    HaEntity,
    ValueRule,
    ha_birth_topic,
    ha_computed_entities,
    ha_config_subscription,
    ha_devices,
    ha_discovery_messages,
    ha_entities,
    ha_node_id,
    ha_removal_messages,
    value_template,
)
from p1mqtt.discovery.homie import (
    HOMIE_VERSION,
    HomieDatatype,
    HomieNode,
    HomieProperty,
    HomieState,
    homie_messages,
    homie_nodes,
    homie_state_message,
    homie_values,
    homie_will,
)

__all__ = [
    "DEFAULT_DISCOVERY_PREFIX",
    "HOMIE_VERSION",
    "HaDevice",
    "HaEntity",
    "HomieDatatype",
    "HomieNode",
    "HomieProperty",
    "HomieState",
    "ValueRule",
    "ha_birth_topic",
    "ha_computed_entities",
    "ha_config_subscription",
    "ha_devices",
    "ha_discovery_messages",
    "ha_entities",
    "ha_node_id",
    "ha_removal_messages",
    "homie_messages",
    "homie_nodes",
    "homie_state_message",
    "homie_values",
    "homie_will",
    "value_template",
]
