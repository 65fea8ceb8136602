"""Decodes Sluice's audit Avro with fastavro (an implementation that is not avsc) and
prints what it read as JSON, for test/integration/audit-interop.test.ts.

  fastavro_decode.py single SCHEMA.avsc MESSAGES.json
      MESSAGES.json: a JSON list of hex strings, each a single-object encoded event
      (C3 01, 8-byte CRC-64-AVRO fingerprint, body). Checks the marker, compares the
      fingerprint with fastavro's own fingerprint of the schema's parsing canonical form,
      and decodes the body with schemaless_reader.
  fastavro_decode.py container FILE...
      Reads each Avro object container file with fastavro.reader (schema from the file).

Output: {"canonical", "fingerprint", "events": [...]} for single; {"files": [{"path",
"codec", "events"}]} for container. Each event is rendered faithfully: uuid as text,
timestamp-micros as an integer number of microseconds, bytes as {"hex": hex digits}, and
a union branch that is a record as {"branch": full name, "value": record}.
"""
import datetime
import io
import json
import sys
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


def single(schema_path, messages_path):
    with open(schema_path, encoding="utf-8") as f:
        schema_json = json.load(f)
    canonical = to_parsing_canonical_form(schema_json)
    expected_fp = fingerprint(canonical, "CRC-64-AVRO")
    schema = parse_schema(schema_json)
    with open(messages_path, encoding="utf-8") as f:
        messages = [bytes.fromhex(h) for h in json.load(f)]
    events = []
    for i, message in enumerate(messages):
        if message[:2] != b"\xc3\x01":
            raise SystemExit(f"message {i}: no single-object marker: {message[:2].hex()}")
        fp = message[2:10].hex()
        if fp != expected_fp:
            raise SystemExit(f"message {i}: fingerprint {fp}, fastavro computes {expected_fp}")
        body = io.BytesIO(message[10:])
        record = fastavro.schemaless_reader(body, schema, return_record_name=True)
        if body.tell() != len(message) - 10:
            raise SystemExit(f"message {i}: {len(message) - 10 - body.tell()} bytes left after the record")
        events.append(plain(record))
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
    elif len(argv) >= 1 and argv[0] == "container":
        out = container(argv[1:])
    else:
        raise SystemExit(__doc__)
    out["fastavro"] = fastavro.__version__
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
