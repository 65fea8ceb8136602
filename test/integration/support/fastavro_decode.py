"""Decodes Sluice's audit Avro with fastavro (an implementation that is not avsc) and
prints what it read as JSON, for the audit interoperability tests.

  fastavro_decode.py single SCHEMA.avsc MESSAGES.json
      MESSAGES.json: a JSON list of hex strings, each a single-object encoded event
      (C3 01, 8-byte CRC-64-AVRO fingerprint, body). Checks the marker, compares the
      fingerprint with fastavro's own fingerprint of the schema's parsing canonical form,
      and decodes the body with schemaless_reader.
  fastavro_decode.py confluent REGISTRY_URL MESSAGES.json
      MESSAGES.json: a JSON list of hex strings, each in the Confluent wire format (00,
      4-byte schema id, body). Fetches each id's schema from the registry's
      GET /schemas/ids/{id}, as a consumer's deserializer would, and decodes the body.
  fastavro_decode.py container FILE...
      Reads each Avro object container file with fastavro.reader (schema from the file).

Output: {"canonical", "fingerprint", "events": [...]} for single; {"schemaIds", "events"}
for confluent; {"files": [{"path", "codec", "events"}]} for container. Each event is rendered faithfully: uuid as text,
timestamp-micros as an integer number of microseconds, bytes as {"hex": hex digits}, and
a union branch that is a record as {"branch": full name, "value": record}.
"""
import datetime
import io
import json
import sys
import urllib.request
import uuid

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
MICRO = datetime.timedelta(microseconds=1)


def plain(value):
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return {"branch": value[0], "value": plain(value[1])}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // MICRO
    return value


def read_body(i, message, start, schema):
    body = io.BytesIO(message[start:])
    record = fastavro.schemaless_reader(body, schema, return_record_name=True)
    if body.tell() != len(message) - start:
        raise SystemExit(f"message {i}: {len(message) - start - body.tell()} bytes left after the record")
    return plain(record)


def read_messages(messages_path):
    with open(messages_path, encoding="utf-8") as f:
        return [bytes.fromhex(h) for h in json.load(f)]


def confluent(registry_url, messages_path):
    schemas = {}
    events = []
    for i, message in enumerate(read_messages(messages_path)):
        if message[:1] != b"\x00":
            raise SystemExit(f"message {i}: magic byte {message[:1].hex()}, not 00")
        schema_id = int.from_bytes(message[1:5], "big")
        if schema_id not in schemas:
            with urllib.request.urlopen(f"{registry_url}/schemas/ids/{schema_id}", timeout=10) as answer:
                schemas[schema_id] = parse_schema(json.loads(json.load(answer)["schema"]))
        events.append(read_body(i, message, 5, schemas[schema_id]))
    return {"schemaIds": sorted(schemas), "events": events}


def single(schema_path, messages_path):
    with open(schema_path, encoding="utf-8") as f:
        schema_json = json.load(f)
    canonical = to_parsing_canonical_form(schema_json)
    expected_fp = fingerprint(canonical, "CRC-64-AVRO")
    schema = parse_schema(schema_json)
    events = []
    for i, message in enumerate(read_messages(messages_path)):
        if message[:2] != b"\xc3\x01":
            raise SystemExit(f"message {i}: no single-object marker: {message[:2].hex()}")
        fp = message[2:10].hex()
        if fp != expected_fp:
            raise SystemExit(f"message {i}: fingerprint {fp}, fastavro computes {expected_fp}")
        events.append(read_body(i, message, 10, schema))
    return {"canonical": canonical, "fingerprint": expected_fp, "events": events}


def container(paths):
    files = []
    for path in paths:
        with open(path, "rb") as f:
            reader = fastavro.reader(f, return_record_name=True)
            events = [plain(record) for record in reader]
            files.append({"path": path, "codec": reader.codec, "events": events})
    return {"files": files}


def main(argv):
    if len(argv) >= 3 and argv[0] == "single":
        out = single(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "confluent":
        out = confluent(argv[1], argv[2])
    elif len(argv) >= 1 and argv[0] == "container":
        out = container(argv[1:])
    else:
        raise SystemExit(__doc__)
    out["fastavro"] = fastavro.__version__
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
