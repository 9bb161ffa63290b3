#!/usr/bin/env python3
"""Load kinds of benches/soak.sh that postern-bench does not speak: HTTP logins, saslauthd and
the abusive clients. Each kind runs for --duration seconds, then prints one result line of
key=value fields (as postern-bench does) and exits 0; the script judges the counts.

  http-good    POST /auth/login (JSON), GET /auth/session, DELETE /auth/session, users in turn
  http-bad     wrong passwords over POST /auth/login from one source address
  sasl-good    saslauthd requests, users in turn
  dovecot-bad  wrong passwords over dovecot-auth from one rip
  cancel       dovecot-auth AUTH immediately followed by CANCEL, in bursts
  hangup       dovecot-auth and HTTP clients that send credentials and close at once
  drip         HTTP clients sending a request head one byte a second
"""

import argparse
import base64
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time


def users(path):
    with open(path) as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]


def pct(lat, p):
    if not lat:
        return 0.0
    lat = sorted(lat)
    return lat[round((len(lat) - 1) * p)] * 1000.0


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.lat = []

    def add(self, key, latency=None):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if latency is not None:
                self.lat.append(latency)

    def line(self, kind, keys):
        with self.lock:
            fields = [f"kind={kind}"] + [f"{k}={self.counts.get(k, 0)}" for k in keys]
            other = {k: v for k, v in self.counts.items() if k not in keys}
            fields += [f"{k}={v}" for k, v in sorted(other.items())]
            if self.lat:
                fields += [f"p50_ms={pct(self.lat, 0.5):.2f}", f"p99_ms={pct(self.lat, 0.99):.2f}"]
            return " ".join(fields)


def run_threads(n, target):
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def host_port(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


# ------------------------------------------------------------------------------------------
# HTTP


def http_conn(a):
    host, port = host_port(a.http)
    return http.client.HTTPConnection(host, port, timeout=30, source_address=(a.source, 0))


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def http_good(a):
    accounts, deadline, t = users(a.user_file), time.monotonic() + a.duration, Tally()
    session = Tally()

    def worker(i):
        conn, n = http_conn(a), i
        while time.monotonic() < deadline:
            name, pw = accounts[n % len(accounts)]
            n += 1
            body = json.dumps({"username": name, "password": pw})
            start = time.monotonic()
            try:
                status, data = request(conn, "POST", "/auth/login", body,
                                       {"Content-Type": "application/json"})
            except (OSError, http.client.HTTPException) as e:
                t.add("error")
                print(f"http-good: login: {e!r}", file=sys.stderr)
                conn.close()
                conn = http_conn(a)
                continue
            took = time.monotonic() - start
            if status != 200:
                t.add({401: "fail", 503: "temp", 429: "limited"}.get(status, f"status{status}"))
                continue
            t.add("ok", took)
            token = json.loads(data)["token"]
            auth = {"Authorization": f"Bearer {token}"}
            try:
                start = time.monotonic()
                status, _ = request(conn, "GET", "/auth/session", None, auth)
                session.add("ok" if status == 200 else f"status{status}", time.monotonic() - start)
                status, _ = request(conn, "DELETE", "/auth/session", None, auth)
                session.add("logout_ok" if status == 204 else f"logout_status{status}")
            except (OSError, http.client.HTTPException) as e:
                session.add("error")
                print(f"http-good: session: {e!r}", file=sys.stderr)
                conn.close()
                conn = http_conn(a)
        conn.close()

    run_threads(a.threads, worker)
    line = t.line("http-login", ["ok", "fail", "temp"])
    s = session.line("http-session", ["ok", "logout_ok"]).replace("kind=http-session ", "")
    print(line + " " + " ".join("session_" + f for f in s.split()))


def http_bad(a):
    deadline, t = time.monotonic() + a.duration, Tally()
    conn = http_conn(a)
    body = json.dumps({"username": a.user, "password": "not-the-password"})
    while time.monotonic() < deadline:
        try:
            status, _ = request(conn, "POST", "/auth/login", body,
                                {"Content-Type": "application/json"})
            t.add({401: "refused", 429: "limited", 200: "accepted"}.get(status, f"status{status}"))
        except (OSError, http.client.HTTPException):
            t.add("error")
            conn.close()
            conn = http_conn(a)
        time.sleep(a.pause)
    print(t.line("http-bad", ["refused", "limited", "accepted"]))


def http_drip(a):
    deadline, t = time.monotonic() + a.duration, Tally()
    head = b"POST /auth/login HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"

    def worker(_):
        while time.monotonic() < deadline:
            s = socket.create_connection(host_port(a.http), timeout=5,
                                         source_address=(a.source, 0))
            start, sent = time.monotonic(), 0
            try:
                while time.monotonic() < deadline:
                    s.send(head[sent % len(head):sent % len(head) + 1])
                    sent += 1
                    time.sleep(1)
                else:
                    t.add("open_at_end")
                    continue
            except OSError:
                t.add("cut", time.monotonic() - start)
            finally:
                s.close()

    run_threads(a.threads, worker)
    print(t.line("http-drip", ["cut", "open_at_end"]).replace("p50_ms", "held_p50_ms")
          .replace("p99_ms", "held_p99_ms"))


# ------------------------------------------------------------------------------------------
# saslauthd: four length-prefixed strings (login, password, service, realm); answer "OK …"/"NO …"


def sasl_string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def sasl_good(a):
    accounts, deadline, t = users(a.user_file), time.monotonic() + a.duration, Tally()

    def worker(i):
        n = i
        while time.monotonic() < deadline:
            name, pw = accounts[n % len(accounts)]
            n += 1
            start = time.monotonic()
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(30)
                    s.connect(a.socket)
                    s.sendall(b"".join(sasl_string(x) for x in (name, pw, a.service, "")))
                    size = struct.unpack(">H", recv_exact(s, 2))[0]
                    answer = recv_exact(s, size)
            except OSError as e:
                t.add("error")
                print(f"sasl-good: {e!r}", file=sys.stderr)
                continue
            t.add("ok" if answer.startswith(b"OK") else "fail", time.monotonic() - start)

    run_threads(a.threads, worker)
    print(t.line("saslauthd", ["ok", "fail"]))


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


# ------------------------------------------------------------------------------------------
# dovecot-auth


def plain(name, pw):
    return base64.b64encode(f"\0{name}\0{pw}".encode()).decode()


def dovecot_open(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile("rb")
    while f.readline().rstrip(b"\n") != b"DONE":
        pass
    s.sendall(f"VERSION\t1\t2\nCPID\t{os.getpid()}\n".encode())
    return s, f


def dovecot_bad(a):
    deadline, t = time.monotonic() + a.duration, Tally()
    s, f = dovecot_open(a.socket)
    rid = 0
    while time.monotonic() < deadline:
        batch = ""
        for _ in range(a.in_flight):
            rid += 1
            batch += (f"AUTH\t{rid}\tPLAIN\tservice=smtp\tsecured\trip={a.rip}"
                      f"\tresp={plain(a.user, 'not-the-password')}\n")
        s.sendall(batch.encode())
        for _ in range(a.in_flight):
            fields = f.readline().decode().rstrip("\n").split("\t")
            if fields[0] == "OK":
                t.add("accepted")
            elif "temp" in fields:
                t.add("limited")
            else:
                t.add("refused")
        time.sleep(a.pause)
    s.close()
    print(t.line("dovecot-bad", ["refused", "limited", "accepted"]))


def cancel_flood(a):
    accounts, deadline, t = users(a.user_file), time.monotonic() + a.duration, Tally()
    s, f = dovecot_open(a.socket)

    def reader():
        try:
            for line in f:
                t.add("answered_" + line.split(b"\t", 1)[0].decode())
        except (OSError, ValueError):
            pass

    threading.Thread(target=reader, daemon=True).start()
    rid = 0
    while time.monotonic() < deadline:
        batch = ""
        for _ in range(a.burst):
            rid += 1
            name, pw = accounts[rid % len(accounts)]
            batch += (f"AUTH\t{rid}\tPLAIN\tservice=smtp\tsecured\trip={a.rip}"
                      f"\tresp={plain(name, pw)}\nCANCEL\t{rid}\n")
            t.add("cancelled")
        try:
            s.sendall(batch.encode())
        except OSError as e:
            t.add("error")
            print(f"cancel: {e!r}", file=sys.stderr)
            s.close()
            s, f = dovecot_open(a.socket)
            threading.Thread(target=reader, daemon=True).start()
        time.sleep(a.pause)
    s.close()
    print(t.line("cancel-flood", ["cancelled"]))


def hangup(a):
    deadline, t = time.monotonic() + a.duration, Tally()
    name, pw = a.user, a.password
    body = json.dumps({"username": name, "password": pw}).encode()
    http_req = (b"POST /auth/login HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(a.socket)
                s.sendall(f"VERSION\t1\t2\nCPID\t{os.getpid()}\nAUTH\t1\tPLAIN\tservice=smtp"
                          f"\tsecured\trip={a.rip}\tresp={plain(name, pw)}\n".encode())
            t.add("dovecot")
            with socket.create_connection(host_port(a.http), timeout=5,
                                          source_address=(a.source, 0)) as s:
                s.sendall(http_req)
            t.add("http")
        except OSError as e:
            t.add("error")
            print(f"hangup: {e!r}", file=sys.stderr)
        time.sleep(a.pause)
    print(t.line("hangup", ["dovecot", "http"]))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["http-good", "http-bad", "sasl-good", "dovecot-bad",
                                    "cancel", "hangup", "drip"])
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--http", help="HOST:PORT of the HTTP listener")
    p.add_argument("--source", default="127.0.0.1", help="local address of HTTP clients")
    p.add_argument("--socket", help="unix socket (dovecot-auth or saslauthd)")
    p.add_argument("--user-file", help="name<TAB>password lines")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--rip", default="192.0.2.66")
    p.add_argument("--service", default="imap")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument("--burst", type=int, default=20)
    p.add_argument("--pause", type=float, default=0.1)
    a = p.parse_args()
    {"http-good": http_good, "http-bad": http_bad, "sasl-good": sasl_good,
     "dovecot-bad": dovecot_bad, "cancel": cancel_flood, "hangup": hangup,
     "drip": http_drip}[a.kind](a)


if __name__ == "__main__":
    main()
