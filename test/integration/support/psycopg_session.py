"""
One psycopg 3 session (Debian's python3-psycopg, libpq underneath) through the Sluice
gateway, driven by test/integration/pg-clients-psycopg.test.ts.

    python3 psycopg_session.py "<libpq dsn>"     (the password comes from PGPASSWORD)

Every section runs even when an earlier one failed; the script prints one JSON object
mapping each section to what it observed (or to {"error", "sqlstate"}), and the test
asserts on the values.
"""
import datetime
import decimal
import hashlib
import json
import logging
import sys
import threading
import time
import traceback
import uuid

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb

DSN = sys.argv[1]
T = "sluice_psycopg_items"
T_COPY = "sluice_psycopg_copy"
summary = {"psycopg": psycopg.__version__, "libpq": psycopg.pq.version()}


def section(name):
    def run(fn):
        global conn
        try:
            summary[name] = fn()
        except Exception as e:  # recorded, asserted by the test
            summary[name] = {
                "error": f"{type(e).__name__}: {e}",
                "sqlstate": getattr(e, "sqlstate", None),
                "trace": traceback.format_exc(limit=3),
            }
            # A failed section must not poison the ones after it: start a fresh session.
            conn.close()
            conn = connect()
        return fn

    return run


def sqlstate_of(fn):
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    return None


def connect():
    return psycopg.connect(DSN, application_name="sluice-psycopg-test")


conn = connect()


@section("connect")
def _():
    with conn.cursor() as cur:
        cur.execute("SELECT current_user, current_database(), current_setting('application_name'), pg_backend_pid()")
        user, db, app, real_pid = cur.fetchone()
    status_in_transaction = conn.info.transaction_status.name  # psycopg began a transaction
    conn.commit()
    return {
        "user": user,
        "database": db,
        "application_name": app,
        # conn.info.backend_pid is what BackendKeyData said; Sluice issues its own.
        "key_pid_differs": conn.info.backend_pid != real_pid,
        "status_in_transaction": status_in_transaction,
        "status_after_commit": conn.info.transaction_status.name,
    }


@section("params")
def _():
    with conn.cursor() as cur:
        cur.execute(
            "SELECT %s::int + 1, %s::text || '!', %s::int IS NULL, %s::numeric * 2, %s::date + 1, %s::text[], %s",
            (41, "héllo ✓", None, decimal.Decimal("12345678901234567890.5"), datetime.date(2024, 2, 28), ["a", "b,c", 'd"e'], Jsonb({"k": [1, "two"]})),
        )
        n, s, was_null, d, day, arr, j = cur.fetchone()
        # psycopg 3 binds server-side: the server sees the $n placeholders, not the values.
        cur.execute("SELECT current_query(), %s::int", (7,))
        (text, _) = cur.fetchone()
    conn.commit()
    return {"n": n, "s": s, "was_null": was_null, "d": str(d), "day": day.isoformat(), "arr": arr, "json": j, "server_saw": text}


@section("executemany")
def _():
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {T}")
        cur.execute(f"CREATE TABLE {T} (id int PRIMARY KEY, name text NOT NULL, qty int)")
        cur.executemany(f"INSERT INTO {T} (id, name, qty) VALUES (%s, %s, %s)", [(i, f"item-{i}", i % 10) for i in range(500)])
        cur.execute(f"SELECT count(*), sum(qty) FROM {T}")
        count, total = cur.fetchone()
    conn.commit()
    return {"count": count, "sum": total}


@section("transactions")
def _():
    result = {}
    with conn.transaction():
        conn.execute(f"INSERT INTO {T} VALUES (1000, 'committed', 1)")
    try:
        with conn.transaction():
            conn.execute(f"INSERT INTO {T} VALUES (1001, 'rolled back', 1)")
            raise RuntimeError("roll it back")
    except RuntimeError:
        pass
    # An error inside an explicit transaction: the block is aborted until ROLLBACK.
    conn.execute(f"INSERT INTO {T} VALUES (1002, 'doomed', 1)")
    result["first_error"] = sqlstate_of(lambda: conn.execute("SELECT 1/0"))
    result["status_after_error"] = conn.info.transaction_status.name
    result["next_statement"] = sqlstate_of(lambda: conn.execute("SELECT 1"))
    conn.rollback()
    result["status_after_rollback"] = conn.info.transaction_status.name
    # Savepoints via nested transaction blocks.
    with conn.transaction():
        conn.execute(f"INSERT INTO {T} VALUES (1003, 'kept', 1)")
        try:
            with conn.transaction():
                conn.execute(f"INSERT INTO {T} VALUES (1003, 'duplicate', 1)")
        except errors.UniqueViolation as e:
            result["savepoint_error"] = e.sqlstate
        conn.execute(f"INSERT INTO {T} VALUES (1004, 'kept too', 1)")
    result["ids"] = [r[0] for r in conn.execute(f"SELECT id FROM {T} WHERE id >= 1000 ORDER BY id").fetchall()]
    conn.commit()
    return result


@section("copy_text")
def _():
    rows = [(i, f"payload-{i}-{'z' * (i % 37)}", None if i % 7 == 0 else f"note ✓ {i}") for i in range(3000)]
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {T_COPY}")
        cur.execute(f"CREATE TABLE {T_COPY} (id int PRIMARY KEY, payload text, note text)")
        with cur.copy(f"COPY {T_COPY} (id, payload, note) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        loaded = cur.rowcount
        out = []
        with cur.copy(f"COPY (SELECT id, payload, note FROM {T_COPY} ORDER BY id) TO STDOUT") as copy:
            for r in copy.rows():
                out.append((int(r[0]), r[1], r[2]))
        raw = bytearray()
        with cur.copy(f"COPY (SELECT id, payload FROM {T_COPY} WHERE id < 3 ORDER BY id) TO STDOUT (FORMAT csv, HEADER)") as copy:
            for block in copy:
                raw += block
    conn.commit()
    return {"loaded": loaded, "round_trip_equal": out == rows, "rows_out": len(out), "csv": raw.decode()}


@section("copy_binary")
def _():
    rows = [(100000 + i, bytes(range(256)) * (i % 3 + 1), i * 0.25) for i in range(500)]
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE sluice_psycopg_bin (id int, blob bytea, f float8)")
        with cur.copy("COPY sluice_psycopg_bin FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "bytea", "float8"])
            for r in rows:
                copy.write_row(r)
        out = []
        with cur.copy("COPY (SELECT id, blob, f FROM sluice_psycopg_bin ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "bytea", "float8"])
            for r in copy.rows():
                out.append((r[0], bytes(r[1]), r[2]))
        cur.execute("SELECT md5(string_agg(blob, ''::bytea ORDER BY id)) FROM sluice_psycopg_bin")
        (server_md5,) = cur.fetchone()
    conn.commit()
    client_md5 = hashlib.md5(b"".join(r[1] for r in rows)).hexdigest()
    return {"rows": len(out), "round_trip_equal": out == rows, "md5_equal": server_md5 == client_md5}


@section("binary_cursor")
def _():
    every_byte = bytes(range(256))
    u = uuid.UUID("12345678-9abc-def0-fedc-ba9876543210")
    ts = datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=datetime.timezone.utc)
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT %s::int2, %s::int4, %s::int8, %s::float8, %s::bool, %s::text, %s::bytea, %s::uuid, %s::timestamptz, %s::numeric, '{1,-2,3}'::int4[], NULL::int4, '{\"k\": [1, \"two\"]}'::jsonb",
            (-12, -2147483648, -9007199254740993, 3.141592653589793, True, "bïnary ✓", every_byte, u, ts, decimal.Decimal("-1234.5678")),
        )
        row = cur.fetchone()
        result_format = cur.pgresult.fformat(0) if cur.pgresult else None
    conn.commit()
    expected = (-12, -2147483648, -9007199254740993, 3.141592653589793, True, "bïnary ✓", every_byte, u, ts, decimal.Decimal("-1234.5678"), [1, -2, 3], None, {"k": [1, "two"]})
    got = tuple(bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else v for v in row)
    mismatches = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    return {"result_format": result_format, "mismatches": mismatches, "columns": len(row)}


@section("prepared")
def _():
    results = []
    with conn.cursor() as cur:
        for i in range(10):
            cur.execute("SELECT %s::int * %s::int AS sq", (i, i), prepare=True)
            results.append(cur.fetchone()[0])
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int * $2::int AS sq'")
        (prepared,) = cur.fetchone()
    conn.commit()
    return {"results": results, "prepared_on_server": prepared}


class _ExpectedLog(logging.Filter):
    """Drops the log records whose message starts with `prefix` and ends with `suffix`."""

    def __init__(self, prefix, suffix):
        super().__init__()
        self.prefix = prefix
        self.suffix = suffix

    def filter(self, record):
        message = record.getMessage()
        return not (message.startswith(self.prefix) and message.endswith(self.suffix))


@section("pipeline")
def _():
    result = {"supported": psycopg.Pipeline.is_supported()}
    cursors = []
    with conn.pipeline():
        for i in range(200):
            cur = conn.cursor()
            cur.execute("SELECT %s::int AS i", (i,))
            cursors.append(cur)
    result["values_in_order"] = [c.fetchone()[0] for c in cursors] == list(range(200))
    # An error in a pipeline: the failing statement raises; the session recovers afterwards.
    # When the error arrives while the block still runs, psycopg raises it there and logs
    # the pipeline's own "pipeline aborted" at exit (a warning, by timing alone): that log
    # is part of the expected error; any other psycopg log still reaches stderr.
    aborted = _ExpectedLog("error ignored terminating", "pipeline aborted")
    logging.getLogger("psycopg").addFilter(aborted)
    try:
        with conn.pipeline():
            conn.execute(f"INSERT INTO {T} VALUES (2000, 'pipelined', 1)")
            conn.execute("SELECT 1/0")
            conn.execute(f"INSERT INTO {T} VALUES (2001, 'never', 1)")
    except psycopg.Error as e:
        result["pipeline_error"] = e.sqlstate
    finally:
        logging.getLogger("psycopg").removeFilter(aborted)
    conn.rollback()
    result["after_error"] = conn.execute("SELECT 'recovered'").fetchone()[0]
    result["leftover_rows"] = conn.execute(f"SELECT count(*) FROM {T} WHERE id >= 2000").fetchone()[0]
    conn.commit()
    return result


@section("named_cursor")
def _():
    total = 0
    count = 0
    with conn.cursor(name="sluice_psycopg_cursor") as cur:
        cur.itersize = 500
        cur.execute("SELECT g FROM generate_series(1, 5000) g ORDER BY g")
        for (g,) in cur:
            count += 1
            total += g
    conn.commit()
    return {"count": count, "sum": total}


@section("cancel")
def _():
    conn.autocommit = True
    try:
        timer = threading.Timer(0.5, conn.cancel)
        started = time.monotonic()
        timer.start()
        code = sqlstate_of(lambda: conn.execute("SELECT pg_sleep(30)"))
        elapsed = time.monotonic() - started
        timer.join()
        after = conn.execute("SELECT 'alive'").fetchone()[0]
    finally:
        conn.autocommit = False
    return {"sqlstate": code, "seconds": round(elapsed, 2), "after": after}


@section("notify")
def _():
    listener = psycopg.connect(DSN, autocommit=True)
    got = []
    try:
        listener.add_notify_handler(lambda n: got.append({"channel": n.channel, "payload": n.payload}))
        listener.execute("LISTEN sluice_psycopg_chan")
        with psycopg.connect(DSN, autocommit=True) as notifier:
            notifier.execute("SELECT pg_notify('sluice_psycopg_chan', 'hello ✓')")
        # Handlers run when the listener reads from its socket: poll with a query until it came.
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            listener.execute("SELECT 1")
            time.sleep(0.05)
        return got
    finally:
        listener.close()


@section("errors_keep_session")
def _():
    codes = []
    for bad in ["SELEC 1", "SELECT * FROM sluice_psycopg_nope", "SELECT 'x'::int"]:
        codes.append(sqlstate_of(lambda: conn.execute(bad)))
        conn.rollback()
    return {"codes": codes, "after": conn.execute("SELECT 40 + 2").fetchone()[0]}


@section("cleanup")
def _():
    conn.rollback()
    conn.execute(f"DROP TABLE IF EXISTS {T}, {T_COPY}")
    conn.commit()
    return "dropped"


conn.close()
print(json.dumps(summary, default=str))
