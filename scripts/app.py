#!/usr/bin/python3
"""app.py: a small application server for hbd's scenario tests and demo.

HTTP (ThreadingHTTPServer) in front of MariaDB (PyMySQL, Debian's
python3-pymysql), one database connection per request, autocommit:

  POST /rows?id=N   inserts row N (InnoDB); 200 only after the commit
  GET  /rows        the ids stored, as a JSON list, ascending
  GET  /health      200 when the database answers SELECT 1, else 503

Usage: app.py [--port PORT] [--socket PATH | --host HOST [--db-port P]]
              [--user USER] [--password PW] [--database DB]
Defaults come from APP_PORT (8080), APP_DB_SOCKET, APP_DB_HOST (127.0.0.1),
APP_DB_PORT (3306), APP_DB_USER (root), APP_DB_PASSWORD, APP_DB_NAME (app).
With a socket, root logs in as Debian sets MariaDB up (unix_socket auth).

At start it waits up to APP_DB_WAIT seconds (60) for the database and
creates the database and table if they are missing; it exits 1 if the
database never answers. SIGTERM ends it.
"""

import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pymysql


def parse_args():
    env = os.environ.get
    p = argparse.ArgumentParser(description="hbd's demo application server")
    p.add_argument("--port", type=int, default=int(env("APP_PORT", "8080")))
    p.add_argument("--bind", default=env("APP_BIND", "0.0.0.0"))
    p.add_argument("--socket", default=env("APP_DB_SOCKET"))
    p.add_argument("--host", default=env("APP_DB_HOST", "127.0.0.1"))
    p.add_argument("--db-port", type=int, default=int(env("APP_DB_PORT", "3306")))
    p.add_argument("--user", default=env("APP_DB_USER", "root"))
    p.add_argument("--password", default=env("APP_DB_PASSWORD", ""))
    p.add_argument("--database", default=env("APP_DB_NAME", "app"))
    p.add_argument("--db-wait", type=float, default=float(env("APP_DB_WAIT", "60")))
    return p.parse_args()


ARGS = None


def connect(database=True):
    kw = dict(
        user=ARGS.user,
        password=ARGS.password,
        autocommit=True,
        connect_timeout=5,
        read_timeout=10,
        write_timeout=10,
    )
    if database:
        kw["database"] = ARGS.database
    if ARGS.socket:
        kw["unix_socket"] = ARGS.socket
    else:
        kw["host"] = ARGS.host
        kw["port"] = ARGS.db_port
    return pymysql.connect(**kw)


def init_schema():
    deadline = time.monotonic() + ARGS.db_wait
    while True:
        try:
            conn = connect(database=False)
            try:
                with conn.cursor() as c:
                    c.execute(f"CREATE DATABASE IF NOT EXISTS `{ARGS.database}`")
                    c.execute(
                        f"CREATE TABLE IF NOT EXISTS `{ARGS.database}`.`rows` "
                        "(id BIGINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL "
                        "DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
                    )
            finally:
                conn.close()
            return
        except pymysql.MySQLError as e:
            if time.monotonic() > deadline:
                print(f"app: the database does not answer: {e}", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.5)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def query(self, sql, args=None):
        conn = connect()
        try:
            with conn.cursor() as c:
                c.execute(sql, args)
                return c.fetchall()
        finally:
            conn.close()

    def do_GET(self):
        path = urlsplit(self.path).path
        try:
            if path == "/health":
                self.query("SELECT 1")
                self.reply(200, {"ok": True})
            elif path == "/rows":
                rows = self.query("SELECT id FROM `rows` ORDER BY id")
                self.reply(200, [r[0] for r in rows])
            else:
                self.reply(404, {"error": "not found"})
        except pymysql.MySQLError as e:
            self.reply(503, {"error": str(e)})

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != "/rows":
            self.reply(404, {"error": "not found"})
            return
        try:
            ident = int(parse_qs(url.query)["id"][0])
        except (KeyError, ValueError, IndexError):
            self.reply(400, {"error": "POST /rows?id=N"})
            return
        try:
            # autocommit: execute returns once the commit is durable.
            self.query("INSERT INTO `rows` (id) VALUES (%s)", (ident,))
            self.reply(200, {"id": ident})
        except pymysql.IntegrityError as e:
            self.reply(409, {"error": str(e)})
        except pymysql.MySQLError as e:
            self.reply(503, {"error": str(e)})

    def log_message(self, fmt, *args):
        pass  # one line per request would flood the log


def main():
    global ARGS
    ARGS = parse_args()
    init_schema()
    server = ThreadingHTTPServer((ARGS.bind, ARGS.port), Handler)
    server.daemon_threads = True
    print(f"app: serving on {ARGS.bind}:{ARGS.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
