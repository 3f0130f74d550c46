"""psycopg 3 against a sluice server (run by tests/it/server_clients.rs).

Connects, creates a stream, inserts with parameters of several types (text and binary), runs
a historical SELECT with a parameter, reads a few rows of a streaming SELECT and cancels it,
and checks an error's SQLSTATE. Exits non-zero (with a traceback) on the first failure.
"""

import argparse
import datetime as dt
import sys
import threading

import psycopg
from psycopg import errors

UTC = dt.timezone.utc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    port = ap.parse_args().port
    conninfo = f"host=127.0.0.1 port={port} user=sluice dbname=sluice connect_timeout=10"

    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.info.server_version > 0, conn.info.server_version
        cur = conn.cursor()
        cur.execute(
            "CREATE STREAM py_events (id int64, v float64, name string, ok bool,"
            " at datetime64(3, 'UTC'), note nullable(string), small int32)"
        )
        at = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
        insert = "INSERT INTO py_events (id, v, name, ok, at, note, small) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        cur.execute(insert, (1, 1.5, "it's", True, at, None, 7))
        assert cur.rowcount == 1, cur.rowcount
        cur.executemany(insert, [(2, -2.25, "b", False, at + dt.timedelta(seconds=1), "n2", -1),
                                 (3, 1e10, "ç", True, at.replace(tzinfo=None), None, 0)])
        # Binary parameters (%b) and a binary result.
        cur.execute(insert.replace("%s", "%b"), (4, 4.0, "bin", False, at, "x", 2 ** 31 - 1))
        cur.execute("SELECT count(*) FROM table(py_events)")
        assert cur.fetchone() == (4,), "four rows"

        # Historical SELECT with a parameter; types come back as Python types.
        cur.execute("SELECT id, v, name, ok, at, note, small FROM table(py_events) WHERE id >= %s ORDER BY id", (2,))
        rows = cur.fetchall()
        assert [r[0] for r in rows] == [2, 3, 4], rows
        assert rows[0][1:4] == (-2.25, "b", False), rows[0]
        assert rows[0][4] == at + dt.timedelta(seconds=1), rows[0][4]
        assert rows[1][2] == "ç" and rows[1][5] is None, rows[1]
        assert rows[2][6] == 2 ** 31 - 1, rows[2]
        names = [d.name for d in cur.description]
        assert names == ["id", "v", "name", "ok", "at", "note", "small"], names
        with conn.cursor(binary=True) as bcur:
            bcur.execute("SELECT id, v, name, ok, at FROM table(py_events) WHERE name = %s", ("it's",))
            assert bcur.fetchall() == [(1, 1.5, "it's", True, at)]
        # The same statement again (psycopg prepares it server-side after a few runs).
        for i in range(6):
            cur.execute("SELECT count(*) FROM table(py_events) WHERE id > %s", (i,))
            assert cur.fetchone() == (max(0, 4 - i),)

        # An error carries its SQLSTATE; the connection stays usable.
        try:
            cur.execute("SELECT nope FROM table(py_events)")
            raise AssertionError("no error")
        except errors.UndefinedColumn as e:
            assert e.sqlstate == "42703", e.sqlstate
        try:
            cur.execute("SELECT * FROM table(no_such_stream)")
            raise AssertionError("no error")
        except errors.UndefinedTable as e:
            assert e.sqlstate == "42P01", e.sqlstate
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)

        # A streaming SELECT read row by row, then cancelled.
        rows = []
        stream = cur.stream("SELECT id FROM py_events SETTINGS seek_to = 'earliest'")
        try:
            for row in stream:
                rows.append(row[0])
                if len(rows) == 3:
                    conn.cancel_safe(timeout=10)
            raise AssertionError("the streaming query ended by itself")
        except errors.QueryCanceled as e:
            assert e.sqlstate == "57014", e.sqlstate
        assert len(rows) >= 3 and sorted(rows) == sorted(set(rows)), rows
        cur.execute("SELECT count(*) FROM table(py_events)")
        assert cur.fetchone() == (4,), "usable after the cancel"

    # A transaction (psycopg's default) and a server-side cursor over a streaming query.
    with psycopg.connect(conninfo) as conn:
        with conn.cursor(name="tail") as sc:
            sc.execute("SELECT id, name FROM py_events SETTINGS seek_to = 'earliest'")
            first = sc.fetchmany(2)
            assert len(first) == 2, first
            more = sc.fetchmany(2)
            assert len(more) == 2 and {r[0] for r in first + more} == {1, 2, 3, 4}, (first, more)
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM table(py_events) WHERE id = %s", (3,))
            assert cur.fetchone() == ("ç",)
        conn.rollback()

    # A live row reaches a streaming reader that is already waiting.
    with psycopg.connect(conninfo, autocommit=True) as reader, psycopg.connect(conninfo, autocommit=True) as writer:
        got = []
        ready = threading.Event()

        def read() -> None:
            rcur = reader.cursor()
            gen = rcur.stream("SELECT id FROM py_events WHERE id >= 100 LIMIT 1")
            ready.set()
            for row in gen:
                got.append(row[0])

        t = threading.Thread(target=read, daemon=True)
        t.start()
        ready.wait(10)
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        wcur = writer.cursor()
        while t.is_alive() and dt.datetime.now() < deadline:
            wcur.execute(insert, (100, 0.0, "live", True, at, None, 0))
            t.join(0.2)
        assert got == [100], got

    print("psycopg", psycopg.__version__, psycopg.pq.__impl__, "ok")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        import traceback

        traceback.print_exc()
        sys.exit(1)
