"""Telegram -> MQTT messages: topics, plain payloads, filters and throttling."""

import json

from p1mqtt.protocol import Decoder, Telegram, TelegramDecoded, encode_telegram
from p1mqtt.topics import Message, ReadingPolicy, TopicMapper, TopicRules, plain_payload

LINES = [
    "0-0:96.1.4(50217)",
    "0-0:1.0.0(250102120000W)",
    "1-0:1.8.1(000123.456*kWh)",
    "1-0:1.7.0(00.500*kW)",
    "1-0:32.7.0(231.0*V)",
    "0-0:96.14.0(0001)",
    "0-0:98.1.0(1)(1-0:1.6.0)(1-0:1.6.0)(250101000000W)(241218191500W)(03.841*kW)",
    "0-1:24.1.0(003)",
    "0-1:24.2.3(250102115500W)(00112.384*m3)",
]


def telegram(lines: list[str] = LINES) -> Telegram:
    """Decode one telegram built from ``lines``."""
    events = Decoder().feed(encode_telegram("FLU5\\253769484_A", lines))
    assert len(events) == 1 and isinstance(events[0], TelegramDecoded)
    return events[0].telegram


def by_topic(messages: list[Message]) -> dict[str, Message]:
    """Index messages by topic."""
    return {m.topic: m for m in messages}


def test_plain_topics_carry_the_meter_digits() -> None:
    """Each reading gets <prefix>/<key> with the exact decimal text as payload."""
    messages = by_topic(TopicMapper(TopicRules()).messages(telegram(), "{}", 0.0))
    assert messages["p1mqtt/energy_import_tariff_1"].payload == "123.456"
    assert messages["p1mqtt/power_import"].payload == "0.500"
    assert messages["p1mqtt/tariff"].payload == "1"
    assert messages["p1mqtt/gas_volume"].payload == "112.384"
    assert messages["p1mqtt/gas_volume/timestamp"].payload == "2025-01-02T11:55:00+01:00"
    assert messages["p1mqtt/timestamp"].payload == "2025-01-02T12:00:00+01:00"
    assert "p1mqtt/timestamp/timestamp" not in messages


def test_telegram_topic_first_with_the_given_json() -> None:
    """The telegram JSON is published first, on <prefix>/telegram, not retained by default."""
    messages = TopicMapper(TopicRules()).messages(telegram(), '{"x":1}', 0.0)
    assert messages[0] == Message("p1mqtt/telegram", '{"x":1}', 1, False)


def test_readings_retained_and_qos_from_rules() -> None:
    """Per-reading topics are retained by default and use the configured QoS."""
    rules = TopicRules(prefix="home/meter", qos=0)
    message = by_topic(TopicMapper(rules).messages(telegram(), None, 0.0))[
        "home/meter/power_import"
    ]
    assert message.retain and message.qos == 0


def test_profile_reading_is_a_json_list() -> None:
    """The 13-month peak history is published as a JSON list of entries with their month."""
    payload = by_topic(TopicMapper(TopicRules()).messages(telegram(), None, 0.0))[
        "p1mqtt/demand_import_peak_history"
    ].payload
    assert json.loads(payload) == [
        {
            "timestamp": "2024-12-18T19:15:00+01:00",
            "value": 3.841,
            "unit": "kW",
            "period": "2024-12",
        }
    ]


def test_include_and_exclude_by_key_obis_or_pattern() -> None:
    """Filters select readings by key, OBIS code or fnmatch pattern; exclude wins."""
    rules = TopicRules(
        telegram=False, include=("energy_*", "1-0:1.7.0", "gas_*"), exclude=("gas_volume",)
    )
    topics = {m.topic for m in TopicMapper(rules).messages(telegram(), None, 0.0)}
    assert topics == {
        "p1mqtt/energy_import_tariff_1",
        "p1mqtt/power_import",
        "p1mqtt/gas_device_type",
    }


def test_min_interval_throttles_each_reading() -> None:
    """With min_interval, a reading is published at most once per interval."""
    mapper = TopicMapper(TopicRules(telegram=False, policy=ReadingPolicy(min_interval=10)))
    t = telegram()
    counts = [len(mapper.messages(t, None, now)) for now in (0.0, 1.0, 9.9, 10.0)]
    assert counts[1] == counts[2] == 0
    assert counts[0] == counts[3] > 0


def test_on_change_with_heartbeat() -> None:
    """on_change skips unchanged values, but the heartbeat re-publishes them."""
    mapper = TopicMapper(
        TopicRules(telegram=False, policy=ReadingPolicy(on_change=True, heartbeat=60))
    )
    first = telegram()
    changed = telegram([*LINES[:3], "1-0:1.7.0(00.750*kW)", *LINES[4:]])
    assert len(mapper.messages(first, None, 0.0)) > 1
    assert [m.topic for m in mapper.messages(first, None, 1.0)] == []
    assert [m.payload for m in mapper.messages(changed, None, 2.0)] == ["0.750"]
    assert len(mapper.messages(changed, None, 62.0)) > 1


def test_override_policy_per_reading() -> None:
    """An override applies to the readings it names; the others keep the default policy."""
    rules = TopicRules(
        telegram=False,
        policy=ReadingPolicy(on_change=True),
        overrides={"power_*": ReadingPolicy()},
    )
    mapper = TopicMapper(rules)
    mapper.messages(telegram(), None, 0.0)
    assert [m.topic for m in mapper.messages(telegram(), None, 1.0)] == ["p1mqtt/power_import"]


def test_forget_publishes_everything_again() -> None:
    """After forget() (a broker reconnect), throttled readings are published again."""
    mapper = TopicMapper(TopicRules(telegram=False, policy=ReadingPolicy(on_change=True)))
    first = len(mapper.messages(telegram(), None, 0.0))
    mapper.forget()
    assert len(mapper.messages(telegram(), None, 1.0)) == first


def test_readings_can_be_switched_off() -> None:
    """With readings off only the telegram topic is published."""
    messages = TopicMapper(TopicRules(readings=False)).messages(telegram(), "{}", 0.0)
    assert [m.topic for m in messages] == ["p1mqtt/telegram"]


def test_plain_payload_of_text_and_missing_values() -> None:
    """Octet strings publish their text; an empty message an empty payload."""
    t = telegram(["0-0:96.1.1(3153414733313035323039343933)", "0-0:96.13.0()"])
    assert plain_payload(t["0-0:96.1.1"]) == "1SAG3105209493"
    assert plain_payload(t["0-0:96.13.0"]) == ""
